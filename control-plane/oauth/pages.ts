// The few HTML pages a person sees while approving a device or signing in
// to the console: plain, no scripts, no external resources, every
// interpolated value escaped. They follow the system's light/dark setting
// (prefers-color-scheme) as the console does by default, in CSS alone.

/**
 * Sent with every response of the authorization server. No scripts, no
 * fetches, forms only to ourselves, never framed (clickjacking an "Approve"
 * button is the attack this page invites). `script-src 'none'` is spelled out
 * because oidc-provider appends a hash to an existing script-src for its one
 * auto-submitting page (GET /device?user_code=...); see provider.ts.
 */
export const CSP =
  "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src 'none'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1c1e21;margin:0;padding:32px 16px}
main{max-width:420px;margin:0 auto;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);padding:24px 28px}
.brand{font-weight:700;letter-spacing:.12em;color:#3b4cca;font-size:14px;margin:0 0 8px}
h1{font-size:22px;margin:0 0 16px}
p{line-height:1.45}
.error{color:#b00020;font-weight:600}
.note{font-size:13px;color:#555;border-left:3px solid #f0ad4e;padding-left:10px}
code.user-code{display:block;font-size:28px;letter-spacing:.15em;text-align:center;padding:10px;background:#f4f5f7;border-radius:6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;font-size:14px}
dt{color:#555}dd{margin:0;word-break:break-all}
label{display:block;font-size:14px;margin:12px 0 4px}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;font-size:16px;padding:8px;border:1px solid #bbb;border-radius:4px}
input[name=user_code]{text-transform:uppercase;text-align:center;letter-spacing:.15em}
.actions{display:flex;gap:8px;margin-top:16px}
button{font-size:15px;padding:9px 16px;border-radius:4px;border:1px solid #3b4cca;background:#3b4cca;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#b00020;border-color:#b00020}
:root{color-scheme:light dark}
@media (prefers-color-scheme: dark){
body{background:#0f1114;color:#d7dae0}
main{background:#181b20;box-shadow:0 0 0 1px #2a2f37}
.brand{color:#8fb8ff}
.error{color:#ff8a8a}
.note{color:#a9b0bb}
dt{color:#a9b0bb}
code.user-code{background:#0f1114}
input[type=text],input[type=password]{background:#0c0e11;color:#d7dae0;border-color:#3a404a}
button{background:#2f5a94;border-color:#5aa0ff}
button.secondary{background:#181b20;color:#ff8a8a;border-color:#ff8a8a}
}
`;

/** A whole page; `bodyHtml` must already be escaped. */
export function page(title: string, bodyHtml: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · CMDOP</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<p class="brand">CMDOP</p>
<h1>${escapeHtml(title)}</h1>
${bodyHtml}
</main>
</body>
</html>`;
}

/** What the device told us about itself when it asked for a code (all of it self-reported). */
export interface DeviceDescription {
  ip?: unknown;
  ua?: unknown;
  name?: unknown;
  [other: string]: unknown;
}

export function deviceDetails(clientName: string, info: DeviceDescription | undefined): string {
  const rows: string[] = [`<dt>Application</dt><dd>${escapeHtml(clientName)}</dd>`];
  if (info?.name) rows.push(`<dt>Device says it is</dt><dd>${escapeHtml(info.name)}</dd>`);
  if (info?.ip) rows.push(`<dt>Requested from</dt><dd>${escapeHtml(info.ip)}</dd>`);
  if (info?.ua) rows.push(`<dt>Software</dt><dd>${escapeHtml(info.ua)}</dd>`);
  return `<dl>${rows.join('')}</dl>`;
}

export const ONLY_YOUR_OWN_CODE =
  '<p class="note">Only approve a code you started yourself, on a device you control, and only if it ' +
  'matches the code shown there. If someone sent you this code or link, deny it: approving gives ' +
  'that device access to your CMDOP account and its machines.</p>';

/** '****-****' style display of a normalized (unformatted) user code. */
export function formatUserCode(normalized: string, mask = '****-****'): string {
  let out = '';
  let i = 0;
  for (const ch of mask) {
    if (ch === '*') {
      if (i >= normalized.length) break;
      out += normalized[i++];
    } else {
      out += ch;
    }
  }
  return out + normalized.slice(i);
}
