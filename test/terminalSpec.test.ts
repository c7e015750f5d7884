import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TerminalKind, TerminalSpec } from '../protocol';
import { execSpec, shellSpec } from '../protocol/terminalSpec';

describe('TerminalSpec builders (protocol/terminalSpec.ts)', () => {
  it('set every field the proto has (a new field must get its default here)', () => {
    const fields = Object.keys(TerminalSpec.fromPartial({})).sort();
    assert.deepEqual(Object.keys(shellSpec()).sort(), fields);
    assert.deepEqual(Object.keys(execSpec('true')).sort(), fields);
  });

  it('a shell: PTY, 80x24 unless told, the options passed through', () => {
    assert.deepEqual(shellSpec(), { kind: TerminalKind.SHELL, argv: [], shellCommand: '', pty: true, cols: 80, rows: 24, cwd: '', env: {}, title: '' });
    const s = shellSpec({ cols: 120, rows: 40, cwd: '/tmp', env: { A: '1' }, title: 'logs' });
    assert.deepEqual([s.cols, s.rows, s.cwd, s.env, s.title], [120, 40, '/tmp', { A: '1' }, 'logs']);
  });

  it('a command: a string through the shell, an array as argv; no PTY unless asked', () => {
    assert.deepEqual([execSpec('ls | wc -l').shellCommand, execSpec('ls | wc -l').argv], ['ls | wc -l', []]);
    assert.deepEqual([execSpec(['ls', '-l']).shellCommand, execSpec(['ls', '-l']).argv], ['', ['ls', '-l']]);
    assert.equal(execSpec('x').kind, TerminalKind.EXEC);
    assert.equal(execSpec('x').pty, false);
    assert.equal(execSpec('x', { pty: true }).pty, true);
  });
});
