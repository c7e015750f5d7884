// A tiny browser for the sign-in pages: a cookie jar and manual redirects
// over real HTTP, plus the steps a person takes to approve a device login.
import assert from 'node:assert/strict';

export class Browser {
  private readonly jar = new Map<string, { value: string; path: string }>();

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const u = new URL(url);
    const cookies = [...this.jar.entries()]
      .filter(([, c]) => u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : c.path + '/') || c.path === '/')
      .map(([name, c]) => `${name}=${c.value}`);
    const headers: Record<string, string> = { accept: 'text/html', 'user-agent': 'oauth-test-browser' };
    if (cookies.length) headers.cookie = cookies.join('; ');
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.store(line);
    return res;
  }

  /** Requests, then follows redirects (GET) until a non-redirect; returns the final response and its URL. */
  async follow(url: string, init: { method?: string; form?: Record<string, string> } = {}) {
    let res = await this.request(url, init);
    let at = url;
    const trail: number[] = [res.status];
    for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
      assert.ok(hops < 10, 'redirect loop');
      await res.arrayBuffer();
      at = new URL(res.headers.get('location')!, at).href;
      res = await this.request(at);
      trail.push(res.status);
    }
    return { res, url: at, html: await res.text(), trail };
  }

  private store(line: string) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let cookiePath = '/';
    let expired = value === '';
    for (const a of attrs) {
      const [k, v] = a.split('=');
      if (k.toLowerCase() === 'path') cookiePath = v;
      if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
    }
    if (expired) this.jar.delete(name);
    else this.jar.set(name, { value, path: cookiePath });
  }
}

export function decodeHtml(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

/** Hidden inputs of the form with this id (oidc-provider's forms). */
export function hiddenInputs(html: string, formId: string): Record<string, string> {
  const start = html.indexOf(`id="${formId}"`);
  assert.ok(start >= 0, `form ${formId} not in page:\n${html}`);
  const formHtml = html.slice(start, html.indexOf('</form>', start));
  const out: Record<string, string> = {};
  for (const m of formHtml.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) out[m[1]] = decodeHtml(m[2]);
  return out;
}

/**
 * What a person does with a device code: open the verification page, enter
 * the code, confirm (or deny), sign in. Returns the last page's HTML.
 */
export async function approveDevice(
  verificationUri: string,
  userCode: string,
  user: string,
  password: string | string[],
  o: { deny?: boolean; browser?: Browser; pages?: string[] } = {},
): Promise<string> {
  const b = o.browser ?? new Browser();
  const base = new URL(verificationUri).origin;
  const input = await b.follow(verificationUri);
  const { xsrf } = hiddenInputs(input.html, 'op.deviceInputForm');
  const entered = await b.follow(`${base}/device`, { form: { xsrf, user_code: userCode } });
  const fields = hiddenInputs(entered.html, 'op.deviceConfirmForm');
  if (o.deny) {
    const denied = await b.follow(`${base}/device`, { form: { ...fields, abort: 'yes' } });
    return denied.html;
  }
  const login = await b.follow(`${base}/device`, { form: fields });
  // Several passwords: tried in turn on the same sign-in page, as a person retyping would.
  let html = '';
  for (const pw of Array.isArray(password) ? password : [password]) {
    html = (await b.follow(login.url, { form: { username: user, password: pw } })).html;
    o.pages?.push(html);
  }
  return html;
}
