// Electron's entry: the thin layer that hands the operating system to
// Desktop (desktop.ts), where everything of substance lives and is tested
// under plain Node. Here: single instance, the tray, console windows and
// their hardening, powerMonitor, safeStorage, start at login, and
// utilityProcess.fork for the control-plane and agent processes (hosts.ts).
import path from 'node:path';
import {
  app,
  BrowserWindow,
  clipboard,
  Menu,
  Notification,
  powerMonitor,
  safeStorage,
  screen,
  session,
  shell,
  Tray,
  utilityProcess,
  type MenuItemConstructorOptions,
  type WebContents,
} from 'electron';
import { defaultDataDir, defaultMachineName } from '../../lib/paths';
import { createLogger } from '../../lib/logger';
import { setXdgAutostart } from './autostart';
import { Desktop, type DesktopHost } from './desktop';
import type { ForkHost } from './hosts';
import { desktopConsoleCsp, isConsoleUrl, isExternalLinkAllowed, isWatchWindowUrl, secureWebPreferences } from './security';
import { loadSettings, saveSettings } from './settings';
import type { MenuItem, TrayIcon } from './trayMenu';
import { WindowStates } from './windowState';

const RESOURCES = app.isPackaged ? process.resourcesPath : path.join(__dirname, '..', '..', '..', 'resources');
const PRELOAD = path.join(__dirname, 'preload.js');
const log = createLogger('desktop', process.env.CMDOP_LOG_LEVEL ?? 'info');

// A separate profile (settings, windows, agent identity, credentials): for tests, and for running two apps side by side.
if (process.env.CMDOP_DESKTOP_HOME) app.setPath('userData', process.env.CMDOP_DESKTOP_HOME);

if (!app.requestSingleInstanceLock()) {
  // Another instance owns the tray and the agent; it opens its console (below) and this one leaves.
  app.quit();
} else {
  void app.whenReady().then(main, (e: Error) => {
    log.error(e.message);
    app.exit(1);
  });
}

async function main(): Promise<void> {
  const userData = app.getPath('userData');
  const settingsFile = path.join(userData, 'settings.json');
  const { settings, problems } = loadSettings(settingsFile, defaultMachineName());
  const windows = new WindowStates(path.join(userData, 'windows.json'));
  let consoleOrigin = '';
  let mainWindow: BrowserWindow | undefined;
  let tray: Tray | undefined;

  const trayIcon = (icon: TrayIcon) => path.join(RESOURCES, `tray-${icon}.png`);
  const toTemplate = (items: MenuItem[]): MenuItemConstructorOptions[] =>
    items.map((i) =>
      i.separator
        ? { type: 'separator' }
        : {
            label: i.label,
            enabled: i.enabled ?? true,
            ...(i.checked !== undefined ? { type: 'checkbox' as const, checked: i.checked } : {}),
            submenu: i.submenu ? toTemplate(i.submenu) : undefined,
            click: i.action ? () => void desktop.run(i.action!) : undefined,
          },
    );

  const host: DesktopHost = {
    power: powerMonitor,
    secrets: safeStorage,
    tray: {
      render(m) {
        tray ??= new Tray(trayIcon(m.icon));
        tray.setImage(trayIcon(m.icon));
        tray.setToolTip(m.tooltip);
        tray.setContextMenu(Menu.buildFromTemplate(toTemplate(m.menu)));
      },
    },
    openConsole(url) {
      consoleOrigin = new URL(url).origin;
      if (mainWindow && !mainWindow.isDestroyed()) {
        void mainWindow.loadURL(url);
        mainWindow.show();
        mainWindow.focus();
        return;
      }
      mainWindow = consoleWindow('main', url, { width: 1200, height: 800 });
    },
    notify: (title, body) => new Notification({ title, body }).show(),
    openExternal: (url) => void (isExternalLinkAllowed(url) && shell.openExternal(url)),
    copyText: (text) => clipboard.writeText(text),
    openSettings: () => void shell.openPath(settingsFile),
    setAutostart(on) {
      startAtLogin(on);
      saveSettings(settingsFile, { ...settings, autostart: on });
    },
    quit: () => void quit(),
  };
  const desktop = new Desktop(host, { settings, dataDir: defaultDataDir(), stateDir: path.join(userData, 'agent'), logger: log, fork: utilityFork });

  function consoleWindow(key: string, url: string, size: { width: number; height: number }): BrowserWindow {
    const displays = screen.getAllDisplays().map((d) => d.workArea);
    const w = new BrowserWindow({
      ...windows.boundsFor(key, displays, size),
      title: 'CMDOP',
      show: false,
      icon: path.join(RESOURCES, 'icon.png'),
      webPreferences: secureWebPreferences(PRELOAD),
    });
    w.once('ready-to-show', () => w.show());
    const save = () => !w.isDestroyed() && windows.remember(key, w.getNormalBounds());
    w.on('resized', save);
    w.on('moved', save);
    w.on('close', save);
    void w.loadURL(url);
    return w;
  }

  // Every web contents, whoever made it: console pages only, no webviews,
  // watch windows as windows of their own, other links to the system browser.
  app.on('web-contents-created', (_e, contents: WebContents) => {
    contents.on('will-attach-webview', (ev) => ev.preventDefault());
    contents.on('will-navigate', (ev, url) => {
      if (!isConsoleUrl(url, consoleOrigin)) ev.preventDefault();
    });
    contents.on('will-redirect', (ev, url) => {
      if (!isConsoleUrl(url, consoleOrigin)) ev.preventDefault();
    });
    contents.setWindowOpenHandler(({ url }) => {
      if (isWatchWindowUrl(url, consoleOrigin)) {
        const key = `watch:${new URL(url).searchParams.get('terminal') ?? ''}`;
        const displays = screen.getAllDisplays().map((d) => d.workArea);
        return {
          action: 'allow',
          overrideBrowserWindowOptions: { ...windows.boundsFor(key, displays, { width: 960, height: 640 }), webPreferences: secureWebPreferences(PRELOAD) },
        };
      }
      if (isExternalLinkAllowed(url)) void shell.openExternal(url);
      return { action: 'deny' };
    });
    contents.on('did-create-window', (w, { url }) => {
      const key = `watch:${new URL(url).searchParams.get('terminal') ?? ''}`;
      const save = () => !w.isDestroyed() && windows.remember(key, w.getNormalBounds());
      w.on('resized', save);
      w.on('moved', save);
      w.on('close', save);
    });
  });

  // The console is a web page: it asks for nothing; refuse every permission.
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  // The control plane sends the console's CSP; enforce it here too, in case a proxy strips it.
  session.defaultSession.webRequest.onHeadersReceived((details, cb) => {
    const headers = details.responseHeaders ?? {};
    if (consoleOrigin && isConsoleUrl(details.url, consoleOrigin) && details.resourceType === 'mainFrame') {
      headers['Content-Security-Policy'] = [desktopConsoleCsp(consoleOrigin)];
    }
    cb({ responseHeaders: headers });
  });

  // Closing every window leaves the app in the tray.
  app.on('window-all-closed', () => {});
  app.on('second-instance', () => void desktop.run({ kind: 'open-console' }));
  startAtLogin(settings.autostart);
  try {
    saveSettings(settingsFile, settings); // a file to edit from "Settings…", with the bad values replaced
  } catch (e) {
    log.warn((e as Error).message);
  }

  let quitting = false;
  async function quit(): Promise<void> {
    if (quitting) return;
    quitting = true;
    await desktop.stop().catch((e: Error) => log.error(e.message));
    app.exit(0);
  }
  app.on('before-quit', (e) => {
    if (quitting) return;
    e.preventDefault();
    void quit();
  });

  for (const p of problems) host.notify('CMDOP settings', p);
  try {
    await desktop.start();
  } catch (e) {
    host.notify('CMDOP could not start', (e as Error).message);
    log.error((e as Error).message);
  }
  // Started by hand: show the console so the user sees something happened. Started at login: stay in the tray.
  const atLogin = process.argv.includes('--hidden') || app.getLoginItemSettings().wasOpenedAtLogin;
  if (!atLogin && desktop.state.kind !== 'signed-out') void desktop.run({ kind: 'open-console' });
}

/**
 * The server processes as Electron utility processes (as VS Code's pty host
 * and Teleport Connect's shared process run): Node without a window, its own
 * event loop and heap, the V8 flags in execArgv, messages over parentPort.
 */
const utilityFork: ForkHost = (modulePath, o) => {
  const child = utilityProcess.fork(modulePath, [], { execArgv: o.execArgv, serviceName: o.serviceName, stdio: 'inherit' });
  let gone = false;
  child.once('exit', () => (gone = true));
  return {
    get pid() {
      return child.pid;
    },
    postMessage: (m) => {
      if (!gone) child.postMessage(m);
    },
    onMessage: (fn) => void child.on('message', fn),
    // Electron reports the exit code only; a signal shows as a code.
    onExit: (fn) => void child.once('exit', (code) => fn(code, null)),
    kill: (signal) => {
      if (gone) return;
      if (signal === 'SIGKILL' && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      else child.kill();
    },
  };
};

function startAtLogin(on: boolean): void {
  if (process.platform === 'linux') {
    const dir = path.join(process.env.XDG_CONFIG_HOME || path.join(app.getPath('home'), '.config'), 'autostart');
    setXdgAutostart(dir, on, process.env.APPIMAGE || process.execPath);
  } else {
    app.setLoginItemSettings({ openAtLogin: on, openAsHidden: true, args: ['--hidden'] });
  }
}
