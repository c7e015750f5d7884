// A tab's title from what the shell sets with OSC 0/2 (vim, ssh, a prompt
// that names the directory). The text comes from the remote machine, so it
// is cleaned (no control characters, bounded) before it is shown, and the
// machine's name stays in it: "vim — laptop-1" tells two vims apart.
const MAX = 120;

/** The shell's title, cleaned; '' when nothing is left (the tab falls back to its own name). */
export function cleanShellTitle(raw: string): string {
  const t = raw.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').replace(/\s+/g, ' ').trim();
  return t.length > MAX ? `${t.slice(0, MAX - 1)}…` : t;
}

/** "TITLE — MACHINE", unless the title names the machine already (bash's "user@host: ~" often does). */
export function withMachine(title: string, machine: string): string {
  return title.includes(machine) ? title : `${title} — ${machine}`;
}
