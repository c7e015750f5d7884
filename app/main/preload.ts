// The console windows' preload: the narrowest bridge that is any use. The
// console is a web page that works the same in a browser; in the desktop app
// it may learn that it runs there (to word things right), and nothing else.
// No ipcRenderer, no Node, nothing that takes arguments.
import { contextBridge } from 'electron';

contextBridge.exposeInMainWorld('cmdopDesktop', Object.freeze({ desktop: true, platform: process.platform }));
