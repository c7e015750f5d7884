import { FONT_MAX, FONT_MIN, parseRenderer, parseTheme } from '../state/settings';
import type { ConsoleStore } from '../state/store';
import { BINDINGS } from './shortcuts';

export function SettingsPanel({ store, close }: { store: ConsoleStore; close(): void }) {
  const s = store.settings;
  return (
    <div className="overlay" role="dialog" aria-label="Settings" data-testid="settings" onKeyDown={(e) => e.key === 'Escape' && close()}>
      <h2>Settings</h2>
      <label>
        Font size{' '}
        <input
          type="number"
          data-testid="font-size"
          min={FONT_MIN}
          max={FONT_MAX}
          value={s.fontSize}
          autoFocus
          onChange={(e) => {
            const n = Number(e.target.value);
            if (Number.isFinite(n) && n >= FONT_MIN && n <= FONT_MAX) store.updateSettings({ ...s, fontSize: n });
          }}
        />
      </label>
      <label>
        Theme{' '}
        <select data-testid="theme" value={s.theme} onChange={(e) => store.updateSettings({ ...s, theme: parseTheme(e.target.value) })}>
          <option value="system">as the system</option>
          <option value="light">light</option>
          <option value="dark">dark</option>
        </select>
      </label>
      <label>
        Renderer{' '}
        <select data-testid="renderer" value={s.renderer} onChange={(e) => store.updateSettings({ ...s, renderer: parseRenderer(e.target.value) })}>
          <option value="auto">WebGL when a GPU draws it</option>
          <option value="webgl">WebGL always (even in software)</option>
          <option value="dom">DOM</option>
        </select>
      </label>
      <p className="dim">Saved in this browser. The renderer applies to tabs opened afterwards.</p>
      <button type="button" onClick={close}>
        Close
      </button>
    </div>
  );
}

export function HelpPanel({ close }: { close(): void }) {
  return (
    <div className="overlay" role="dialog" aria-label="Keyboard shortcuts" data-testid="help" onKeyDown={(e) => e.key === 'Escape' && close()}>
      <h2>Keyboard</h2>
      <table>
        <tbody>
          {BINDINGS.filter((b) => b.label).map((b) => (
            <tr key={b.action}>
              <td>
                <kbd>{b.label}</kbd>
              </td>
              <td>{b.what}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" autoFocus onClick={close}>
        Close
      </button>
    </div>
  );
}
