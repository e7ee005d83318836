// avouch management console: a small single-page app over the admin REST API
// (/api/…). No framework, no inline script, nothing loaded from elsewhere.
// Untrusted text is only ever set with textContent.
'use strict';

const S = { csrf: '', user: '', idle: 0, idleTimer: null, flash: null };

// ---------- DOM helpers ----------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'value') e.value = v;
    else if (k === 'checked') e.checked = !!v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function show(...nodes) {
  const main = document.getElementById('main');
  main.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
  if (S.flash) {
    main.prepend(msg(S.flash.kind, S.flash.text));
    S.flash = null;
  }
  window.scrollTo(0, 0);
}

function msg(kind, text) {
  return el('div', { class: 'msg ' + kind, role: kind === 'error' ? 'alert' : 'status', id: 'msg' }, text);
}

function header(title, crumbs) {
  return [el('h1', { text: title }), el('div', { class: 'crumbs', text: crumbs || '' })];
}

function go(hash, flash) {
  if (flash) S.flash = flash;
  if (location.hash === hash) route(); else location.hash = hash;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
    this.field = body && body.field;
  }
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method !== 'GET' && S.csrf) opt.headers['X-CSRF-Token'] = S.csrf;
  const res = await fetch(path, opt);
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch (e) { data = { error: text }; } }
  if (res.status === 401 && !(method === 'POST' && path === '/api/session')) {
    const had = !!S.csrf;
    S.csrf = '';
    go('#/login', had ? { kind: 'error', text: (data && data.error) || 'Your session has ended: log in again.' } : null);
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  touch();
  return data;
}

// touch restarts the idle timer: after the resident IdP's idle timeout the
// console returns to the login page (the server enforces it too).
function touch() {
  if (!S.idle) return;
  clearTimeout(S.idleTimer);
  S.idleTimer = setTimeout(() => {
    S.csrf = '';
    go('#/login', { kind: 'info', text: 'You were logged out after ' + Math.round(S.idle / 60) + ' minutes of inactivity.' });
  }, S.idle * 1000);
}

// ---------- forms ----------

// A field: {name (API field), label, type, value, options, help, rows}.
// Types: text, password, number, textarea, lines (one item per line),
// pairs (KEY=VALUE per line), checkbox, select, checks (several checkboxes).
function field(f) {
  const id = 'f-' + f.name.replace(/[^A-Za-z0-9_-]/g, '_');
  let input;
  switch (f.type) {
    case 'textarea': case 'lines': case 'pairs': {
      let v = f.value || '';
      if (f.type === 'lines' && Array.isArray(v)) v = v.join('\n');
      if (f.type === 'pairs' && typeof v === 'object') v = Object.entries(v).map(([k, x]) => k + '=' + x).join('\n');
      input = el('textarea', { id, name: f.name, rows: f.rows || 3, value: v, placeholder: f.placeholder });
      break;
    }
    case 'checkbox':
      input = el('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
      return el('div', { class: 'field check', 'data-field': f.name }, input, el('label', { for: id, text: f.label }),
        f.help ? el('small', { class: 'help muted', text: ' — ' + f.help }) : null);
    case 'select':
      input = el('select', { id, name: f.name },
        (f.options || []).map(o => {
          const [v, t] = Array.isArray(o) ? o : [o, o];
          const opt = el('option', { value: v, text: t });
          if (String(v) === String(f.value)) opt.selected = true;
          return opt;
        }));
      break;
    case 'checks': {
      const chosen = new Set(f.value || []);
      input = el('div', { id, 'data-checks': f.name },
        (f.options || []).map((o, i) => {
          const cid = id + '-' + i;
          return el('div', { class: 'check' }, el('input', { type: 'checkbox', id: cid, value: o, checked: chosen.has(o) }),
            el('label', { for: cid, text: o }));
        }));
      break;
    }
    default:
      input = el('input', { id, name: f.name, type: f.type || 'text', value: f.value === undefined ? '' : f.value,
        placeholder: f.placeholder, autocomplete: f.autocomplete || 'off' });
  }
  return el(f.type === 'checks' ? 'div' : 'label', { class: 'field', 'data-field': f.name, for: f.type === 'checks' ? null : id },
    el('span', { class: 'lbl', text: f.label }), input,
    f.help ? el('small', { class: 'help', text: f.help }) : null);
}

function readField(form, f) {
  if (f.type === 'checks') {
    return [...form.querySelectorAll('[data-checks="' + f.name + '"] input:checked')].map(i => i.value);
  }
  const input = form.querySelector('[name="' + f.name + '"]');
  if (!input) return undefined;
  switch (f.type) {
    case 'checkbox': return input.checked;
    case 'number': return input.value === '' ? 0 : Number(input.value);
    case 'lines': return input.value.split('\n').map(s => s.trim()).filter(Boolean);
    case 'pairs': {
      const out = {};
      for (const line of input.value.split('\n')) {
        const s = line.trim();
        if (!s) continue;
        const i = s.indexOf('=');
        if (i < 0) out[s] = ''; else out[s.slice(0, i).trim()] = s.slice(i + 1).trim();
      }
      return out;
    }
    default: return input.value;
  }
}

function clearErrors(form) {
  form.querySelectorAll('.fielderror').forEach(e => e.remove());
  form.querySelectorAll('.invalid').forEach(e => e.classList.remove('invalid'));
  const m = form.querySelector('.msg');
  if (m) m.remove();
}

// showError puts the API's message next to the field it names (matching the
// longest field name that prefixes it) and at the top of the form.
function showError(form, err) {
  clearErrors(form);
  let target = null;
  if (err.field) {
    let best = '';
    form.querySelectorAll('[data-field]').forEach(node => {
      const n = node.getAttribute('data-field');
      if ((err.field === n || err.field.startsWith(n + '.') || err.field.startsWith(n + '[')) && n.length > best.length) {
        best = n; target = node;
      }
    });
  }
  let text = err.message || String(err);
  if (err.field && text.startsWith(err.field + ': ')) text = text.slice(err.field.length + 2);
  let where = '';
  if (target) {
    const input = target.querySelector('input,select,textarea') || target;
    input.classList.add('invalid');
    target.append(el('span', { class: 'fielderror', role: 'alert', text }));
    input.focus && input.focus();
    const lbl = target.querySelector('.lbl') || target.querySelector('label');
    if (lbl) where = lbl.textContent + ': ';
  } else if (err.field) {
    where = err.field + ': ';
  }
  form.prepend(msg('error', (err.status === 400 || err.status === 409 ? 'Please correct ' + where : where) + text));
}

// makeForm builds a form; submit(values) returns a promise; errors from the
// API are shown next to their field.
function makeForm(fields, submit, label, extra) {
  const form = el('form', { novalidate: true }, fields.map(field),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'submit-' + (label || 'save').toLowerCase().replace(/\W+/g, '-'), text: label || 'Save' }), extra || null));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearErrors(form);
    const v = {};
    for (const f of fields) v[f.name] = readField(form, f);
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      await submit(v, form);
    } catch (err) {
      if (err.status !== 401) showError(form, err);
    } finally {
      btn.disabled = false;
    }
  });
  return form;
}

function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => {
      const bytes = new Uint8Array(r.result);
      let bin = '';
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      resolve(btoa(bin));
    };
    r.onerror = () => reject(new Error('could not read the file'));
    r.readAsArrayBuffer(file);
  });
}

function table(cols, rows, empty) {
  if (!rows.length) return el('p', { class: 'muted', text: empty || 'Nothing here yet.' });
  return el('table', {}, el('thead', {}, el('tr', {}, cols.map(c => el('th', { text: c })))),
    el('tbody', {}, rows.map(r => el('tr', {}, r.map(c => c instanceof Node ? el('td', {}, c) : el('td', { text: c === undefined ? '' : String(c) }))))));
}

function link(href, text, id) { return el('a', { href, text, id }); }

function searchBox(value, onSearch, id) {
  const input = el('input', { type: 'search', id: id || 'search', placeholder: 'Search…', value: value || '' });
  let t = null;
  input.addEventListener('input', () => { clearTimeout(t); t = setTimeout(() => onSearch(input.value), 250); });
  return input;
}

// ---------- navigation ----------

const NAV = [
  ['Identity Providers', [['#/idp/resident', 'Resident']]],
  ['Service Providers', [['#/sp/add', 'Add'], ['#/sp/list', 'List']]],
  ['Security Token Service', [['#/policy', 'Apply Security Policy']]],
  ['Users and Roles', [['#/users', 'Users'], ['#/roles', 'Roles and claims']]],
  ['User Stores', [['#/userstores', 'User store domains']]],
  ['Keystores', [['#/keys', 'Trust store and signing keys']]],
  ['Monitor', [['#/tracer', 'SOAP Tracer'], ['#/audit', 'Audit log']]],
  ['Access', [['#/tokens', 'API tokens']]],
];

function renderNav() {
  const nav = document.getElementById('nav');
  nav.hidden = !S.csrf;
  nav.replaceChildren(...NAV.flatMap(([h, items]) => [el('h3', { text: h }),
    ...items.map(([href, t]) => el('a', { href, text: t, class: location.hash.startsWith(href) ? 'current' : '' }))]));
  const who = document.getElementById('who');
  who.replaceChildren();
  if (S.csrf) {
    who.append(el('span', { text: S.user }), el('button', { id: 'logout', type: 'button', onclick: logout, text: 'Log out' }));
  }
}

async function logout() {
  try { await api('DELETE', '/api/session'); } catch (e) { /* already gone */ }
  S.csrf = '';
  go('#/login', { kind: 'ok', text: 'Logged out.' });
}

const ROUTES = [
  [/^#\/login$/, viewLogin],
  [/^#\/?$/, viewHome],
  [/^#\/idp\/resident$/, viewResident],
  [/^#\/sp\/add$/, viewSPAdd],
  [/^#\/sp\/list$/, viewSPList],
  [/^#\/sp\/edit\/(.+)$/, viewSPEdit],
  [/^#\/policy$/, viewPolicy],
  [/^#\/users$/, viewUsers],
  [/^#\/users\/add$/, viewUserAdd],
  [/^#\/users\/edit\/(.+)$/, viewUserEdit],
  [/^#\/roles$/, viewRoles],
  [/^#\/userstores$/, viewUserStores],
  [/^#\/userstores\/edit\/(.*)$/, viewUserStoreEdit],
  [/^#\/keys$/, viewKeys],
  [/^#\/tracer$/, viewTracer],
  [/^#\/audit$/, viewAudit],
  [/^#\/tokens$/, viewTokens],
];

async function route() {
  const hash = location.hash || '#/';
  if (!S.csrf && hash !== '#/login') {
    try {
      const s = await api('GET', '/api/session');
      if (s.via === 'session') { S.csrf = s.csrf_token; S.user = s.user; S.idle = s.idle_timeout_seconds; touch(); }
    } catch (e) {
      if (e.status !== 401) show(header('Error'), msg('error', e.message));
      return;
    }
  }
  renderNav();
  for (const [re, view] of ROUTES) {
    const m = hash.match(re);
    if (m) {
      try {
        await view(...m.slice(1).map(decodeURIComponent));
      } catch (err) {
        if (err.status !== 401) show(header('Error'), msg('error', err.message));
      }
      return;
    }
  }
  show(header('Not found'), msg('error', 'No such page.'));
}

// ---------- views ----------

function viewLogin() {
  renderNav();
  const fields = [
    { name: 'username', label: 'User name', autocomplete: 'username' },
    { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' },
  ];
  show(el('div', { class: 'login' }, el('section', { class: 'box' }, el('h1', { text: 'Sign in' }),
    el('p', { class: 'muted', text: 'Users with the admin role manage avouch here.' }),
    makeForm(fields, async v => {
      let s;
      try {
        s = await api('POST', '/api/session', v);
      } catch (e) {
        // A refused login is shown on the form (not as an ended session).
        throw Object.assign(new Error(e.message), { status: e.status === 401 ? 'login' : e.status, field: e.field });
      }
      S.csrf = s.csrf_token; S.user = s.user; S.idle = s.idle_timeout_seconds; touch();
      go('#/', { kind: 'ok', text: 'Welcome, ' + s.user + '.' });
    }, 'Sign in'))));
  document.getElementById('f-username').focus();
}

function viewHome() {
  show(header('Home', 'avouch — WS-Trust Security Token Service'),
    el('section', { class: 'box' }, el('h2', { text: 'Common tasks' }),
      el('ul', {},
        el('li', {}, link('#/idp/resident', 'Configure the resident identity provider'), ' (home realm identifier, session timeouts, token defaults)'),
        el('li', {}, link('#/policy', 'Apply the security policy'), ' of the Security Token Service'),
        el('li', {}, link('#/keys', 'Upload a relying party certificate'), ' to the trust store'),
        el('li', {}, link('#/sp/add', 'Add a service provider'), ' and its WS-Trust configuration'),
        el('li', {}, link('#/tracer', 'Trace SOAP messages'), ' with secrets masked'))));
}

async function viewResident() {
  const r = await api('GET', '/api/resident-idp');
  const fixed = new Set(r.fixed || []);
  const note = k => fixed.has(k) ? 'Fixed on this node by a flag or environment variable: a stored value does not apply here.' : undefined;
  const fields = [
    { name: 'home_realm_identifiers', label: 'Home Realm Identifier', type: 'lines', value: r.home_realm_identifiers, help: 'One per line.' },
    { name: 'issuer', label: 'Issuer name', value: r.issuer, help: note('issuer') || 'Written as the Issuer of every token.' },
    { name: 'session_idle_timeout', label: 'Idle Session Time Out', value: r.session_idle_timeout, help: note('session_idle_timeout') || 'e.g. 15m — browser sign-in and this console.' },
    { name: 'remember_me_period', label: 'Remember Me Period', value: r.remember_me_period, help: note('remember_me_period') || 'e.g. 336h (two weeks).' },
    { name: 'token_lifetime', label: 'Token lifetime', value: r.token_lifetime, help: note('token_lifetime') },
    { name: 'max_token_lifetime', label: 'Maximum token lifetime', value: r.max_token_lifetime, help: note('max_token_lifetime') },
    { name: 'renew_window', label: 'Renew window after expiry', value: r.renew_window, help: note('renew_window') },
    { name: 'default_token_type', label: 'Default token type', type: 'select', value: r.default_token_type, options: [['saml2.0', 'SAML 2.0'], ['saml1.1', 'SAML 1.1']] },
    { name: 'signature_algorithm', label: 'Signature algorithm', type: 'select', value: r.signature_algorithm, options: ['rsa-sha256', 'rsa-sha512', 'rsa-sha1', 'ecdsa-sha256'] },
    { name: 'digest_algorithm', label: 'Digest algorithm', type: 'select', value: r.digest_algorithm, options: ['sha256', 'sha512', 'sha1'] },
    { name: 'refuse_unknown_relying_parties', label: 'Refuse AppliesTo addresses that match no service provider', type: 'checkbox', value: r.refuse_unknown_relying_parties },
  ];
  show(header('Resident Identity Provider', 'Identity Providers › Resident'),
    el('section', { class: 'box' }, el('h2', { text: 'Resident Realm and Inbound Authentication' }),
      makeForm(fields, async v => {
        await api('PUT', '/api/resident-idp', v);
        go('#/idp/resident', { kind: 'ok', text: 'Resident identity provider saved.' });
      }, 'Update')));
}

// ----- service providers -----

async function viewSPList() {
  const q = new URLSearchParams(location.search).get('q') || '';
  const list = el('div', { id: 'sp-list' });
  const load = async q => {
    const d = await api('GET', '/api/service-providers?q=' + encodeURIComponent(q));
    list.replaceChildren(table(['Name', 'Description', 'WS-Trust endpoints', 'Certificate alias', 'Encrypt'],
      d.service_providers.map(sp => [link('#/sp/edit/' + encodeURIComponent(sp.name), sp.name), sp.description || '',
        sp.wstrust ? (sp.wstrust.endpoints || []).concat(sp.wstrust.patterns || []).join(' ') : '',
        sp.wstrust ? sp.wstrust.token.cert_alias || '' : '', sp.wstrust && sp.wstrust.token.encrypt ? 'yes' : '']),
      q ? 'No service provider matches “' + q + '”.' : 'No service providers yet.'));
  };
  show(header('Service Providers', 'Service Providers › List'),
    el('div', { class: 'toolbar' }, searchBox(q, load, 'sp-search'), el('a', { href: '#/sp/add', text: 'Add' })), list);
  await load(q);
}

function viewSPAdd() {
  const fields = [
    { name: 'name', label: 'Service Provider Name', help: 'Letters, digits, spaces, ".", "_" or "-".' },
    { name: 'description', label: 'Description', type: 'textarea' },
  ];
  show(header('Add New Service Provider', 'Service Providers › Add'),
    el('section', { class: 'box' }, makeForm(fields, async v => {
      const sp = await api('POST', '/api/service-providers', { name: v.name.trim(), description: v.description, claims: {} });
      go('#/sp/edit/' + encodeURIComponent(sp.name), { kind: 'ok', text: 'Service provider ' + sp.name + ' registered. Configure its inbound authentication below.' });
    }, 'Register')));
}

async function viewSPEdit(name) {
  const [sp, ts] = await Promise.all([api('GET', '/api/service-providers/' + encodeURIComponent(name)), api('GET', '/api/truststore')]);
  const wt = sp.wstrust || { endpoints: [], patterns: [], token: {} };
  const tok = wt.token || {};
  const aliases = [['', '— none —']].concat(ts.trusted.map(c => [c.alias, c.alias + ' (' + c.subject + ')']));
  const fields = [
    { name: 'description', label: 'Description', type: 'textarea', value: sp.description },
    { name: 'wstrust.endpoints', label: 'Endpoint Address', type: 'lines', value: wt.endpoints, help: 'AppliesTo addresses, one per line, matched exactly.' },
    { name: 'wstrust.patterns', label: 'Endpoint patterns (regular expressions)', type: 'lines', value: wt.patterns, help: 'Optional; matched against the whole AppliesTo.' },
    { name: 'wstrust.token.cert_alias', label: 'Certificate Alias', type: 'select', value: tok.cert_alias || '', options: aliases, help: 'The relying party\'s certificate from the trust store.' },
    { name: 'wstrust.token.encrypt', label: 'Encrypt tokens for this certificate', type: 'checkbox', value: tok.encrypt },
    { name: 'wstrust.token.token_type', label: 'Token type', type: 'select', value: tok.token_type || '', options: [['', 'Server default'], ['saml2.0', 'SAML 2.0'], ['saml1.1', 'SAML 1.1']] },
    { name: 'wstrust.token.lifetime', label: 'Token lifetime', value: tok.lifetime || '', help: 'Empty: server default (e.g. 10m).' },
    { name: 'claims.always', label: 'Claims always included', type: 'lines', value: (sp.claims || {}).always, help: 'Claim URIs, one per line.' },
    { name: 'claims.mapping', label: 'Claim mapping', type: 'pairs', value: (sp.claims || {}).mapping || {}, help: 'LOCAL-CLAIM-URI=RP-CLAIM-URI, one per line.' },
  ];
  const form = makeForm(fields, async v => {
    const endpoints = v['wstrust.endpoints'], patterns = v['wstrust.patterns'];
    const body = { name: sp.name, description: v.description, passive: sp.passive || undefined,
      claims: { always: v['claims.always'], mapping: v['claims.mapping'] } };
    if (endpoints.length || patterns.length || v['wstrust.token.cert_alias'] || v['wstrust.token.encrypt']) {
      body.wstrust = { endpoints, patterns, token: Object.assign({}, tok, {
        cert_alias: v['wstrust.token.cert_alias'], encrypt: v['wstrust.token.encrypt'],
        token_type: v['wstrust.token.token_type'], lifetime: v['wstrust.token.lifetime'] || undefined }) };
      if (!body.wstrust.token.lifetime) delete body.wstrust.token.lifetime;
    }
    await api('PUT', '/api/service-providers/' + encodeURIComponent(sp.name), body);
    go('#/sp/edit/' + encodeURIComponent(sp.name), { kind: 'ok', text: 'Service provider ' + sp.name + ' updated.' });
  }, 'Update', el('button', { type: 'button', class: 'danger', id: 'sp-delete', text: 'Delete', onclick: async () => {
    if (!confirm('Delete service provider ' + sp.name + '?')) return;
    await api('DELETE', '/api/service-providers/' + encodeURIComponent(sp.name));
    go('#/sp/list', { kind: 'ok', text: 'Service provider ' + sp.name + ' deleted.' });
  } }));
  // Sections as in the seeds: the WS-Trust fields sit under Inbound
  // Authentication Configuration.
  const byName = n => form.querySelector('[data-field="' + n + '"]');
  const wsFields = fields.filter(f => f.name.startsWith('wstrust.')).map(f => byName(f.name));
  const claimFields = fields.filter(f => f.name.startsWith('claims.')).map(f => byName(f.name));
  const inbound = el('details', { class: 'box', open: true, id: 'inbound' }, el('summary', { text: 'Inbound Authentication Configuration' }),
    el('details', { open: true, id: 'wstrust-config' }, el('summary', { text: 'WS-Trust Security Token Service Configuration' }), wsFields));
  const claims = el('details', { class: 'box', open: true }, el('summary', { text: 'Claim Configuration' }), claimFields);
  form.insertBefore(claims, form.querySelector('.actions'));
  form.insertBefore(inbound, claims);
  show(header('Edit Service Provider: ' + sp.name, 'Service Providers › List › ' + sp.name),
    el('section', { class: 'box' }, form));
}

// ----- security policy wizard -----

const SCENARIOS = {
  UsernameToken: 'WS-Security UsernameToken (PasswordText over TLS, or PasswordDigest)',
  'x509': 'request signed with an X.509 certificate from the trust store',
  'mutual-tls': 'client certificate in the TLS handshake',
  'usernametoken+x509': 'UsernameToken in a signed request',
  'x509|usernametoken': 'a signed request, or else a UsernameToken',
};

async function viewPolicy() {
  const p = await api('GET', '/api/sts-policy');
  const w = { step: 1, enabled: true, scenario: p.scenario, domains: p.allowed_domains.slice(), roles: p.allowed_roles.slice() };
  const box = el('section', { class: 'box', id: 'wizard' });
  const steps = ['Enable Security?', 'Security scenario', 'User store domain', 'User groups (roles)', 'Finish'];
  const nav = (back, next, label) => el('div', { class: 'actions' },
    back ? el('button', { type: 'button', class: 'secondary', id: 'wizard-back', text: 'Back', onclick: back }) : null,
    el('button', { type: 'button', id: 'wizard-next', text: label || 'Next', onclick: next }));
  const checks = (name, options, chosen) => el('div', { 'data-field': name }, options.map((o, i) => el('div', { class: 'check' },
    el('input', { type: 'checkbox', id: name + '-' + i, value: o, checked: chosen.includes(o) }), el('label', { for: name + '-' + i, text: o }))));
  const picked = name => [...box.querySelectorAll('[data-field="' + name + '"] input:checked')].map(i => i.value);
  const draw = () => {
    const head = el('div', { class: 'steps' }, steps.map((s, i) => el('span', { class: i + 1 === w.step ? 'on' : '', text: (i + 1) + '. ' + s })));
    let body;
    switch (w.step) {
      case 1:
        body = [el('h2', { text: 'Enable Security?' }),
          el('div', { class: 'check' }, el('input', { type: 'radio', name: 'enable', id: 'enable-yes', value: 'yes', checked: true }), el('label', { for: 'enable-yes', text: 'Yes' })),
          el('div', { class: 'check' }, el('input', { type: 'radio', name: 'enable', id: 'enable-no', value: 'no' }), el('label', { for: 'enable-no', text: 'No' })),
          nav(null, () => {
            if (box.querySelector('#enable-no').checked) {
              box.querySelector('.msg')?.remove();
              box.prepend(msg('error', 'The Security Token Service always authenticates its callers: security cannot be disabled. Choose Yes to apply a policy.'));
              return;
            }
            w.step = 2; draw();
          })];
        break;
      case 2:
        body = [el('h2', { text: 'Select a security scenario' }),
          p.scenarios.map((s, i) => el('div', { class: 'check' }, el('input', { type: 'radio', name: 'scenario', id: 'scenario-' + i, value: s, checked: s === w.scenario }),
            el('label', { for: 'scenario-' + i, text: (i + 1) + '. ' + s + (SCENARIOS[s] ? ' — ' + SCENARIOS[s] : '') }))),
          nav(() => { w.step = 1; draw(); }, () => {
            const c = box.querySelector('input[name=scenario]:checked');
            if (!c) { box.prepend(msg('error', 'Choose a scenario.')); return; }
            w.scenario = c.value; w.step = 3; draw();
          })];
        break;
      case 3:
        body = [el('h2', { text: 'Select user store domains' }), el('p', { class: 'muted', text: 'Users of these domains may request tokens.' }),
          checks('allowed_domains', p.domains, w.domains),
          nav(() => { w.step = 2; draw(); }, () => {
            const d = picked('allowed_domains');
            if (!d.length) { box.querySelector('.msg')?.remove(); box.prepend(msg('error', 'Select at least one user store domain.')); return; }
            w.domains = d; w.step = 4; draw();
          })];
        break;
      case 4: {
        const extra = el('input', { type: 'text', id: 'extra-role', placeholder: 'another role, or * for any authenticated user' });
        body = [el('h2', { text: 'Select user groups (roles)' }), el('p', { class: 'muted', text: 'Only users with one of these roles may request tokens.' }),
          checks('allowed_roles', Array.from(new Set(p.roles.concat(w.roles))), w.roles),
          el('label', { class: 'field', for: 'extra-role' }, el('span', { class: 'lbl', text: 'Other role' }), extra),
          nav(() => { w.step = 3; draw(); }, () => {
            const r = picked('allowed_roles');
            if (extra.value.trim()) r.push(extra.value.trim());
            if (!r.length) { box.querySelector('.msg')?.remove(); box.prepend(msg('error', 'Select at least one role.')); return; }
            w.roles = r; w.step = 5; draw();
          })];
        break;
      }
      case 5:
        body = [el('h2', { text: 'Summary' }),
          table(['Setting', 'Value'], [['Scenario', w.scenario], ['User store domains', w.domains.join(', ')], ['Roles', w.roles.join(', ')]]),
          nav(() => { w.step = 4; draw(); }, async () => {
            try {
              await api('PUT', '/api/sts-policy', { enabled: true, scenario: w.scenario, allowed_roles: w.roles, allowed_domains: w.domains });
              go('#/policy', { kind: 'ok', text: 'Security policy applied: ' + w.scenario + ' for roles ' + w.roles.join(', ') + '.' });
            } catch (err) {
              if (err.status !== 401) { box.querySelector('.msg')?.remove(); box.prepend(msg('error', err.message)); }
            }
          }, 'Finish')];
        break;
    }
    box.replaceChildren(head, ...[body].flat(Infinity).filter(Boolean));
  };
  draw();
  show(header('Apply Security Policy', 'Security Token Service › Security'),
    el('section', { class: 'box' }, el('h2', { text: 'Policy in force' }),
      table(['Scenario', 'User store domains', 'Roles'], [[p.scenario, p.allowed_domains.join(', '), p.allowed_roles.join(', ')]])),
    box);
}

// ----- users -----

async function viewUsers() {
  const list = el('div', { id: 'user-list' });
  const load = async q => {
    const d = await api('GET', '/api/users?q=' + encodeURIComponent(q));
    list.replaceChildren(table(['User', 'Roles', 'Claims', 'State'],
      d.users.map(u => [link('#/users/edit/' + encodeURIComponent(u.name), u.name), u.roles.join(', '), Object.keys(u.claims).length,
        el('span', {}, u.disabled ? el('span', { class: 'tag warn', text: 'disabled' }) : null, u.locked ? el('span', { class: 'tag warn', text: 'locked' }) : null,
          u.allow_digest ? el('span', { class: 'tag', text: 'digest' }) : null)]),
      q ? 'No user matches “' + q + '”.' : 'No users.'));
  };
  show(header('Users', 'Users and Roles › Users (PRIMARY)'),
    el('div', { class: 'toolbar' }, searchBox('', load, 'user-search'), el('a', { href: '#/users/add', text: 'Add user', id: 'user-add' })), list);
  await load('');
}

async function rolesOffered() {
  const d = await api('GET', '/api/roles');
  return Array.from(new Set(['admin'].concat(d.roles.map(r => r.name)))).sort();
}

async function viewUserAdd() {
  const roles = await rolesOffered();
  const fields = [
    { name: 'name', label: 'User name', help: 'No "/"; users of secondary stores log in as DOMAIN/name.' },
    { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', help: 'At least 8 characters.' },
    { name: 'roles', label: 'Roles', type: 'checks', options: roles, value: [] },
    { name: 'claims', label: 'Claims', type: 'pairs', help: 'CLAIM-URI=value, one per line.' },
    { name: 'allow_digest', label: 'Allow WS-Security PasswordDigest (keeps the password sealed on the server)', type: 'checkbox' },
  ];
  show(header('Add User', 'Users and Roles › Users › Add'), el('section', { class: 'box' }, makeForm(fields, async v => {
    const u = await api('POST', '/api/users', v);
    go('#/users/edit/' + encodeURIComponent(u.name), { kind: 'ok', text: 'User ' + u.name + ' added.' });
  }, 'Add')));
}

async function viewUserEdit(name) {
  const [u, roles] = await Promise.all([api('GET', '/api/users/' + encodeURIComponent(name)), rolesOffered()]);
  const path = '/api/users/' + encodeURIComponent(name);
  const fields = [
    { name: 'roles', label: 'Roles', type: 'checks', options: Array.from(new Set(roles.concat(u.roles))).sort(), value: u.roles },
    { name: 'claims', label: 'Claims', type: 'pairs', value: u.claims, help: 'CLAIM-URI=value, one per line.' },
    { name: 'disabled', label: 'Account disabled', type: 'checkbox', value: u.disabled },
    { name: 'allow_digest', label: 'PasswordDigest allowed', type: 'checkbox', value: u.allow_digest, help: 'To allow it, reset the password with the box below ticked.' },
  ];
  const state = el('p', {}, u.locked ? el('span', { class: 'tag warn', text: 'locked after failed logins' }) : el('span', { class: 'tag', text: 'not locked' }));
  show(header('User ' + u.domain + '/' + u.name, 'Users and Roles › Users › ' + u.name), state,
    el('section', { class: 'box' }, el('h2', { text: 'Profile' }), makeForm(fields, async v => {
      await api('PUT', path, v);
      go('#/users/edit/' + encodeURIComponent(name), { kind: 'ok', text: 'User ' + name + ' updated.' });
    }, 'Update', el('button', { type: 'button', class: 'danger', text: 'Delete user', onclick: async () => {
      if (!confirm('Delete user ' + name + '?')) return;
      await api('DELETE', path);
      go('#/users', { kind: 'ok', text: 'User ' + name + ' deleted.' });
    } }))),
    el('section', { class: 'box' }, el('h2', { text: 'Reset password' }), makeForm([
      { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password' },
      { name: 'allow_digest', label: 'Allow PasswordDigest with the new password', type: 'checkbox', value: u.allow_digest },
    ], async v => {
      await api('POST', path + '/password', v);
      go('#/users/edit/' + encodeURIComponent(name), { kind: 'ok', text: 'Password of ' + name + ' reset.' });
    }, 'Reset password')),
    el('section', { class: 'box' }, el('h2', { text: 'Lockout' }), el('button', { type: 'button', id: 'unlock', text: 'Unlock account', onclick: async () => {
      await api('POST', path + '/unlock');
      go('#/users/edit/' + encodeURIComponent(name), { kind: 'ok', text: 'Failed logins of ' + name + ' cleared.' });
    } })));
}

async function viewRoles() {
  const [roles, claims] = await Promise.all([api('GET', '/api/roles'), api('GET', '/api/claims')]);
  show(header('Roles and claims', 'Users and Roles › Roles and claims'),
    el('section', { class: 'box' }, el('h2', { text: 'Roles' }),
      table(['Role', 'Description', 'Members', ''], roles.roles.map(r => [r.name, r.description || '', r.members.join(', '),
        r.in_catalogue ? el('button', { type: 'button', class: 'secondary', text: 'Remove', onclick: async () => {
          try { await api('DELETE', '/api/roles/' + encodeURIComponent(r.name)); go('#/roles', { kind: 'ok', text: 'Role ' + r.name + ' removed.' }); } catch (e) { if (e.status !== 401) go('#/roles', { kind: 'error', text: e.message }); }
        } }) : el('span', { class: 'muted', text: 'in use' })])),
      makeForm([{ name: 'name', label: 'New role' }, { name: 'description', label: 'Description' }], async v => {
        await api('POST', '/api/roles', v); go('#/roles', { kind: 'ok', text: 'Role ' + v.name + ' added.' });
      }, 'Add role')),
    el('section', { class: 'box' }, el('h2', { text: 'Claims' }),
      table(['Claim URI', 'Display name', ''], claims.claims.map(c => [el('span', { class: 'mono', text: c.uri }), c.display_name || '',
        c.built_in ? el('span', { class: 'muted', text: 'built in' }) : el('button', { type: 'button', class: 'secondary', text: 'Remove', onclick: async () => {
          await api('DELETE', '/api/claims/' + encodeURIComponent(c.uri)); go('#/roles', { kind: 'ok', text: 'Claim removed.' });
        } })])),
      makeForm([{ name: 'uri', label: 'New claim URI' }, { name: 'display_name', label: 'Display name' }], async v => {
        await api('POST', '/api/claims', v); go('#/roles', { kind: 'ok', text: 'Claim ' + v.uri + ' added.' });
      }, 'Add claim')));
}

// ----- user stores -----

async function viewUserStores() {
  const d = await api('GET', '/api/user-stores');
  show(header('User Store Domains', 'User Stores'),
    el('section', { class: 'box' }, table(['Domain', 'Type', 'URL', 'Order', ''],
      [['PRIMARY', 'embedded', '', '', '']].concat(d.user_stores.map(us => [link('#/userstores/edit/' + encodeURIComponent(us.domain), us.domain), us.type, us.ldap.url, us.order,
        el('button', { type: 'button', class: 'secondary', text: 'Remove', onclick: async () => {
          if (!confirm('Remove user store ' + us.domain + '?')) return;
          await api('DELETE', '/api/user-stores/' + encodeURIComponent(us.domain)); go('#/userstores', { kind: 'ok', text: 'User store ' + us.domain + ' removed.' });
        } })]))),
      el('div', { class: 'actions' }, el('a', { href: '#/userstores/edit/', text: 'Add LDAP / Active Directory user store' }))));
}

async function viewUserStoreEdit(domain) {
  let us = { domain: '', type: 'ldap', order: 0, ldap: { user_filter: '(&(objectClass=inetOrgPerson)(uid={user}))', user_name_attribute: 'uid',
    group_filter: '(&(objectClass=groupOfNames)(member={dn}))' } };
  if (domain) us = await api('GET', '/api/user-stores/' + encodeURIComponent(domain));
  const l = us.ldap;
  const fields = [
    { name: 'domain', label: 'Domain', value: us.domain, help: 'Users log in as DOMAIN/name.' },
    { name: 'ldap.url', label: 'Connection URL', value: l.url, placeholder: 'ldaps://ldap.example.com:636' },
    { name: 'ldap.start_tls', label: 'Use StartTLS', type: 'checkbox', value: l.start_tls },
    { name: 'ldap.bind_dn', label: 'Connection name (bind DN)', value: l.bind_dn },
    { name: 'bind_password', label: 'Connection password', type: 'password', autocomplete: 'new-password', help: us.has_bind_password ? 'Stored (sealed); leave empty to keep it.' : 'Stored sealed under the master key.' },
    { name: 'ldap.user_search_base', label: 'User search base', value: l.user_search_base },
    { name: 'ldap.user_filter', label: 'User search filter', value: l.user_filter },
    { name: 'ldap.user_name_attribute', label: 'User name attribute', value: l.user_name_attribute },
    { name: 'ldap.group_search_base', label: 'Group search base', value: l.group_search_base },
    { name: 'ldap.group_filter', label: 'Group filter', value: l.group_filter },
    { name: 'ldap.role_mapping', label: 'Role mapping', type: 'pairs', value: l.role_mapping || {}, help: 'GROUP=role, one per line.' },
    { name: 'ldap.map_unlisted_groups', label: 'Groups without a mapping become roles of their own name', type: 'checkbox', value: l.map_unlisted_groups },
    { name: 'ldap.claim_mapping', label: 'Claim mapping', type: 'pairs', value: l.claim_mapping || {}, help: 'attribute=claim URI, one per line.' },
    { name: 'order', label: 'Search order', type: 'number', value: us.order },
  ];
  show(header(domain ? 'User store ' + domain : 'Add user store', 'User Stores › ' + (domain || 'Add')),
    el('section', { class: 'box' }, makeForm(fields, async v => {
      const body = { domain: v.domain, type: 'ldap', order: v.order, bind_password: v.bind_password || undefined, ldap: Object.assign({}, l, {
        url: v['ldap.url'], start_tls: v['ldap.start_tls'], bind_dn: v['ldap.bind_dn'], user_search_base: v['ldap.user_search_base'],
        user_filter: v['ldap.user_filter'], user_name_attribute: v['ldap.user_name_attribute'], group_search_base: v['ldap.group_search_base'],
        group_filter: v['ldap.group_filter'], role_mapping: v['ldap.role_mapping'], map_unlisted_groups: v['ldap.map_unlisted_groups'],
        claim_mapping: v['ldap.claim_mapping'] }) };
      if (!body.domain) throw Object.assign(new Error('required'), { status: 400, field: 'domain' });
      await api('PUT', '/api/user-stores/' + encodeURIComponent(body.domain), body);
      go('#/userstores', { kind: 'ok', text: 'User store ' + body.domain.toUpperCase() + ' saved.' });
    }, 'Save')));
}

// ----- keys -----

async function viewKeys() {
  const d = await api('GET', '/api/keys');
  const upload = [
    { name: 'file', label: 'Certificate or keystore file', type: 'file' },
    { name: 'alias', label: 'Alias', help: 'Name of the certificate in the trust store (default: the keystore\'s alias or the certificate\'s CN).' },
    { name: 'password', label: 'Keystore password', type: 'password', help: 'For PKCS#12 and JKS files.' },
    { name: 'entry', label: 'Keystore entry', help: 'Optional: one entry of a keystore with several.' },
    { name: 'replace', label: 'Replace a certificate with this alias', type: 'checkbox' },
  ];
  const uploadForm = makeForm(upload.filter(f => f.type !== 'file'), async (v, form) => {
    const file = form.querySelector('#f-file').files[0];
    if (!file) throw Object.assign(new Error('choose a file (PEM, DER, PKCS#12 or JKS)'), { status: 400, field: 'content' });
    const body = { content: await fileToBase64(file), alias: v.alias || undefined, password: v.password || undefined,
      entry: v.entry || undefined, replace: v.replace || undefined };
    const r = await api('POST', '/api/truststore', body);
    go('#/keys', { kind: 'ok', text: 'Imported ' + r.trusted.map(c => c.alias).join(', ') + ' into the trust store.' });
  }, 'Upload');
  uploadForm.prepend(el('label', { class: 'field', 'data-field': 'content', for: 'f-file' }, el('span', { class: 'lbl', text: 'Certificate or keystore file' }),
    el('input', { type: 'file', id: 'f-file', name: 'file' }), el('small', { class: 'help', text: 'PEM, DER, PKCS#12 (.p12/.pfx) or JKS. Only certificates are kept.' })));
  show(header('Keystores', 'Keystores › Trust store and signing keys'),
    el('section', { class: 'box' }, el('h2', { text: 'Trust store' }),
      table(['Alias', 'Subject', 'Valid until', 'SHA-256', 'Used by', ''], d.trusted.map(c => [c.alias, c.subject, (c.not_after || '').slice(0, 10),
        el('span', { class: 'mono', text: (c.sha256 || '').slice(0, 16) + '…' }), (c.used_by || []).join(', '),
        el('button', { type: 'button', class: 'secondary', text: 'Delete', onclick: async () => {
          if (!confirm('Delete certificate ' + c.alias + '?')) return;
          try { await api('DELETE', '/api/truststore/' + encodeURIComponent(c.alias)); go('#/keys', { kind: 'ok', text: 'Deleted ' + c.alias + '.' }); }
          catch (e) { if (e.status !== 401) go('#/keys', { kind: 'error', text: e.message }); }
        } })]), 'The trust store is empty.'),
      el('h2', { text: 'Upload' }), uploadForm),
    el('section', { class: 'box' }, el('h2', { text: 'Token signing keys' }),
      table(['Key', 'State', 'Subject', 'Algorithm', 'Valid until', 'Retire at'], d.signing.map(k => [el('span', { class: 'mono', text: k.id }),
        k.active ? 'active' : 'published (overlap)', k.subject, k.algorithm, (k.not_after || '').slice(0, 10), k.retire_at || ''])),
      makeForm([{ name: 'overlap', label: 'Overlap period', help: 'How long the old key stays published and accepted (at least the maximum token lifetime; default 24h).' }],
        async v => {
          const r = await api('POST', '/api/keys/signing/rotate', v.overlap ? { overlap: v.overlap } : {});
          go('#/keys', { kind: 'ok', text: 'New signing key ' + r.new.id + ' is active; the old one is retired at ' + r.retire_at + '.' });
        }, 'Rotate signing key')));
}

// ----- SOAP tracer -----

async function viewTracer() {
  const t = await api('GET', '/api/tracer');
  const toggle = el('input', { type: 'checkbox', id: 'tracer-enabled', checked: t.enabled });
  toggle.addEventListener('change', async () => {
    await api('PUT', '/api/tracer', { enabled: toggle.checked });
    go('#/tracer', { kind: 'ok', text: 'SOAP tracer ' + (toggle.checked ? 'on' : 'off') + '.' });
  });
  const rows = t.exchanges.map((x, i) => el('details', { class: 'box exchange', open: i === 0 },
    el('summary', {}, x.time + ' — ' + (x.caller || '(not authenticated)') + ' — ' + x.endpoint + ' — HTTP ' + x.status + (x.fault ? ' — ' + x.fault : '')),
    el('h3', { text: 'Request' }), el('pre', { class: 'request', text: x.request }),
    el('h3', { text: 'Response' }), el('pre', { class: 'response', text: x.response })));
  show(header('SOAP Tracer', 'Monitor › SOAP Tracer'),
    el('section', { class: 'box' },
      el('div', { class: 'check' }, toggle, el('label', { for: 'tracer-enabled', text: 'Trace the WS-Trust endpoints on this node (' + t.node + ')' })),
      el('p', { class: 'muted', text: 'Keeps the last ' + t.capacity + ' exchanges in memory. Passwords, nonces, digests, keys and token bodies are masked before they are kept.' }),
      el('div', { class: 'actions' }, el('button', { type: 'button', id: 'tracer-refresh', class: 'secondary', text: 'Refresh', onclick: () => route() }),
        el('button', { type: 'button', class: 'secondary', text: 'Clear', onclick: async () => { await api('DELETE', '/api/tracer/exchanges'); route(); } }))),
    t.exchanges.length ? rows : el('p', { class: 'muted', id: 'tracer-empty', text: t.enabled ? 'No exchanges yet.' : 'Tracing is off.' }));
}

async function viewAudit() {
  const list = el('div', { id: 'audit-list' });
  const load = async q => {
    const d = await api('GET', '/api/audit?limit=500&q=' + encodeURIComponent(q));
    list.replaceChildren(table(['Time (UTC)', 'Who', 'What', 'Target', 'Detail'], d.events.map(e => [e.time, e.actor, e.action, e.target, e.detail || '']), 'No events.'));
  };
  show(header('Audit log', 'Monitor › Audit log'), el('div', { class: 'toolbar' }, searchBox('', load, 'audit-search')), list);
  await load('');
}

async function viewTokens() {
  const d = await api('GET', '/api/tokens');
  const created = el('div', { id: 'token-created' });
  show(header('API tokens', 'Access › API tokens'),
    el('p', { class: 'muted', text: 'Tokens authenticate scripts to the admin API: Authorization: Bearer <token>. Only a hash is stored.' }),
    el('section', { class: 'box' }, table(['ID', 'Name', 'Created', ''], d.tokens.map(t => [t.id, t.name, t.created,
      el('button', { type: 'button', class: 'secondary', text: 'Revoke', onclick: async () => {
        if (!confirm('Revoke token ' + t.name + '?')) return;
        await api('DELETE', '/api/tokens/' + encodeURIComponent(t.id)); go('#/tokens', { kind: 'ok', text: 'Token ' + t.name + ' revoked.' });
      } })]), 'No API tokens.'),
    makeForm([{ name: 'name', label: 'New token name' }], async v => {
      const r = await api('POST', '/api/tokens', v);
      created.replaceChildren(msg('ok', 'Token ' + r.name + ' created. Copy it now: it is not shown again.'), el('div', { class: 'token', text: r.token }));
    }, 'Create token'), created));
}

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', route);
