// The terminal's two palettes. Every ANSI colour, normal and bright, keeps at
// least 4.5:1 contrast (WCAG AA for text) against its theme's background, so
// text an application prints in any of the 16 colours stays readable: in the
// dark theme "black" is a mid grey, in the light theme "white" and "bright
// yellow" are dark enough to read on near-white (xterm.js's stock colours
// give bright yellow 1.2:1 and bright white 1.1:1 on a light background).
// e2e/console/look.spec.ts checks the ratios on the objects a live tab uses.
// The backgrounds are repeated as --term-bg in styles.css (the padding
// around the terminal).
import type { ITheme } from '@xterm/xterm';

export type ThemeName = 'dark' | 'light';

export const THEMES: Record<ThemeName, ITheme> = {
  dark: {
    background: '#14161a',
    foreground: '#d7dae0',
    cursor: '#d7dae0',
    cursorAccent: '#14161a',
    selectionBackground: '#3a4a63',
    black: '#7f8591',
    red: '#f2777a',
    green: '#8fc779',
    yellow: '#e5c07b',
    blue: '#6cb2f0',
    magenta: '#cf8be6',
    cyan: '#5ec4cf',
    white: '#c8ccd4',
    brightBlack: '#9aa1ad',
    brightRed: '#ff9b9b',
    brightGreen: '#b3e59a',
    brightYellow: '#ffe08a',
    brightBlue: '#9ccdff',
    brightMagenta: '#e7b0f7',
    brightCyan: '#8fe3ec',
    brightWhite: '#ffffff',
  },
  light: {
    background: '#fbfbf8',
    foreground: '#1e2226',
    cursor: '#1e2226',
    cursorAccent: '#fbfbf8',
    selectionBackground: '#b9d3f5',
    black: '#1e2226',
    red: '#b3261e',
    green: '#2b6e2f',
    yellow: '#7d5800',
    blue: '#1f5bb5',
    magenta: '#8e2c9c',
    cyan: '#0b6574',
    white: '#5f6670',
    brightBlack: '#4d535c',
    brightRed: '#d0312d',
    brightGreen: '#3b7d26',
    brightYellow: '#946b00',
    brightBlue: '#2a6fd6',
    brightMagenta: '#a93fb8',
    brightCyan: '#117a8b',
    brightWhite: '#6b717b',
  },
};
