// Start at login. Electron's setLoginItemSettings covers macOS and Windows
// but does nothing on Linux, where desktops start what is in
// ~/.config/autostart/ (the XDG Autostart spec): a .desktop entry there.
import fs from 'node:fs';
import path from 'node:path';

export const AUTOSTART_FILE = 'cmdop-desktop.desktop';

/** The entry; `exec` is the AppImage (APPIMAGE) or the installed binary. */
export function autostartEntry(exec: string): string {
  // Exec quoting per the Desktop Entry spec: double quotes, with " ` $ \ escaped.
  const quoted = `"${exec.replace(/(["`$\\])/g, '\\$1')}"`;
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=CMDOP',
    'Comment=Remote terminals that survive',
    `Exec=${quoted} --hidden`,
    'Icon=cmdop-desktop',
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

/** Writes or removes the entry in `dir` (normally $XDG_CONFIG_HOME/autostart). */
export function setXdgAutostart(dir: string, on: boolean, exec: string): void {
  const file = path.join(dir, AUTOSTART_FILE);
  if (!on) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, autostartEntry(exec), { mode: 0o644 });
}
