/*
 * RadGrid reading page: plain ES2020, no framework, no build step. Talks to the portal API
 * described in PORTAL-CONTRACT.md with a bearer token kept in sessionStorage (it dies with the
 * tab; never localStorage). Nothing here logs to the console: tokens, passwords and patient
 * data must not end up in browser logs.
 *
 * Stable hooks for Tests/Browser/reading_page.py (keep them when changing the markup):
 *   sign-in    #login-form #login-user #login-password #login-submit #login-error
 *   top bar    #live-indicator[data-state=live|connecting|offline] #lang-switch #signout #user-name
 *   worklist   #view-worklist #worklist-body #worklist-empty #worklist-refresh
 *              tr[data-testid=case-row][data-case-id][data-state=offered|accepted][data-priority]
 *                [data-testid=accept-case]   (offered rows)
 *                [data-testid=open-case]     (offered rows: "accept & open"; accepted rows: "open")
 *                [data-testid=decline-reason] [data-testid=decline-case]   (offered rows)
 *                [data-testid=release-reason] [data-testid=release-case]   (accepted rows)
 *                [data-testid=sla-countdown] [data-testid=accept-countdown] [data-testid=partial]
 *   viewer     #view-viewer[data-case-id] #viewer-back #viewer-notice #viewer-accept
 *              [data-testid=patient-name] #patient-id #patient-sex #patient-birth
 *              #study-description #study-date #study-accession
 *              [data-testid=series-thumb][data-series-uid][aria-current=true|false]
 *              #image-area (wheel and keyboard target)
 *              #viewer-image[data-state=empty|loading|loaded|error][data-key][data-sop][data-window][data-ms]
 *              #viewer-overlay rect[data-testid=finding-box]
 *              #slice-label[data-index][data-count] (index is 1-based) #slice-slider
 *              [data-testid=window-preset][data-preset=default|brain|bone|lung|soft][aria-pressed]
 *              #findings-list [data-testid=finding]
 *   report     #report-findings #report-impression #report-critical #report-save #report-sign
 *              #report-status[data-status=none|draft|final|amended] #report-error #report-final
 *              #addendum-text #addendum-reason #addendum-submit
 *   confirm    #confirm-dialog[open] #confirm-ok #confirm-cancel
 */
(() => {
  'use strict';

  const I18N = window.RadI18n;
  const t = I18N.t;
  const $ = (selector, root = document) => root.querySelector(selector);
  const enc = encodeURIComponent;

  const API = '/api/v1';
  const SESSION_KEY = 'radgrid.session';
  const PRIORITY_RANK = { stat: 0, urgent: 1, routine: 2, bulk: 3 };
  const REASONS = ['workload', 'outside-specialty', 'conflict', 'not-credentialed', 'technical', 'personal', 'other'];
  const WINDOW_PRESETS = { default: null, brain: [40, 80], bone: [500, 2000], lung: [-600, 1500], soft: [50, 400] };
  const PRESET_KEYS = { 0: 'default', 1: 'brain', 2: 'bone', 3: 'lung', 4: 'soft' };
  const SLA_SOON_MS = 10 * 60 * 1000;
  const ACCEPT_SOON_MS = 60 * 1000;
  const GONE_ACTIONS = ['cancel', 'release', 'accept_timeout', 'decline'];

  const state = {
    session: null,          // { token, user, name, role, expert, expires_at }
    cases: [],
    worklistUpdated: 0,
    clockSkew: 0,           // server clock minus ours, so countdowns match the server's deadlines
    reasons: new Map(),     // case id → reason picked in its row, kept across re-renders
    rows: new Map(),        // case id → { sig, tr } so unchanged rows survive a refresh (focus, open selects)
    viewer: null,
    loginMessage: null,     // { key, params } so a language switch re-renders it
  };

  // ---------------------------------------------------------------- small helpers

  /** Creates an element; attrs: class, text, or any attribute (true → empty, null/false → absent). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
    return node;
  }

  const serverNow = () => Date.now() + state.clockSkew;
  const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
  const effectivePriority = (c) => c.effective_priority || c.priority || 'routine';

  function formatDuration(ms) {
    let s = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d > 0) return t('dur.days', { d, h });
    const ss = String(s).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  /** DICOM dates (YYYYMMDD) get dashes for reading; anything else is shown as written. */
  function formatDicomDate(value) {
    if (!value) return '—';
    const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
    return m ? `${m[1]}-${m[2]}-${m[3]}` : value;
  }

  function toast(message, kind = 'info', ms = 5000) {
    const node = el('div', { class: `toast ${kind}`, text: message });
    $('#toasts').append(node);
    setTimeout(() => node.remove(), ms);
  }

  /** In-page confirmation (not window.confirm) so it is styled, translated and scriptable. */
  function confirmDialog(message, okLabel) {
    const dialog = $('#confirm-dialog');
    $('#confirm-message').textContent = message;
    $('#confirm-ok').textContent = okLabel || t('common.ok');
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
    });
  }

  // ---------------------------------------------------------------- API access

  class ApiError extends Error {
    constructor(status, code, retryAfter = 0) {
      super(code);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra);
    if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
    return headers;
  }

  /** Fetch with the bearer token; any 401 outside sign-in ends the session. */
  async function authorizedFetch(url, init) {
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network');
    }
    if (res.status === 401 && url !== `${API}/login`) {
      sessionEnded('login.expired');
      throw new ApiError(401, 'portal.unauthorized');
    }
    return res;
  }

  async function errorFrom(res) {
    const data = await res.json().catch(() => null);
    const code = (data && data.error && data.error.code) || `http.${res.status}`;
    return new ApiError(res.status, code, Number(res.headers.get('Retry-After')) || 0);
  }

  async function api(method, path, body, signal) {
    const init = { method, headers: authHeaders({ Accept: 'application/json' }), signal, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await authorizedFetch(API + path, init);
    if (!res.ok) throw await errorFrom(res);
    if (res.status === 204) return null;
    return res.json().catch(() => null);
  }

  /** An image read with the bearer header, handed to <img> as a blob URL (the caller revokes it).
   *  no-store keeps patient images out of the browser's disk cache; the page caches in memory. */
  async function fetchImageURL(path, signal) {
    const res = await authorizedFetch(path, { headers: authHeaders({ Accept: 'image/png' }), signal, cache: 'no-store' });
    if (!res.ok) throw await errorFrom(res);
    return URL.createObjectURL(await res.blob());
  }

  /** A message for the user; server messages are not shown, only translated codes. */
  function errorText(err) {
    if (!(err instanceof ApiError)) return t('err.generic', { code: (err && err.name) || 'error' });
    if (err.code === 'network') return t('err.network');
    if (err.code === 'portal.forbidden') return t('err.forbidden');
    if (err.code === 'portal.state') return t('err.state');
    if (err.status === 503 || err.status === 429) return t('err.unavailable');
    if (err.status === 404) return t('err.notFound');
    return t('err.generic', { code: err.code });
  }

  // ---------------------------------------------------------------- session

  function loadSession() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
      if (saved && saved.token && !(Date.parse(saved.expires_at) <= Date.now())) return saved;
    } catch (_) { /* unreadable: sign in again */ }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  let expiryTimer = null;

  function startSession(restored) {
    $('#user-name').textContent = state.session.name || state.session.user || '';
    clearTimeout(expiryTimer);
    const left = Date.parse(state.session.expires_at) - Date.now();
    // setTimeout overflows past ~24.8 days; a later expiry is caught by the next 401 instead
    if (left > 0 && left < 2 ** 31 - 1) expiryTimer = setTimeout(() => sessionEnded('login.expired'), left);
    startEvents();
    route();
    if (restored) {
      // a restored token may have been revoked meanwhile: a 401 here returns to sign-in
      api('GET', '/me').then((me) => { if (me && me.name) $('#user-name').textContent = me.name; }).catch(() => {});
    }
  }

  /** Drops every trace of the session (token, cases, images) and shows the sign-in form. */
  function sessionEnded(messageKey) {
    if (!state.session) return;
    state.session = null;
    sessionStorage.removeItem(SESSION_KEY);
    clearTimeout(expiryTimer);
    stopEvents();
    closeViewer();
    state.cases = [];
    state.reasons.clear();
    state.rows.clear();
    $('#worklist-body').replaceChildren();
    showLogin(messageKey ? { key: messageKey } : null);
  }

  async function signOut() {
    if (state.viewer && state.viewer.dirty && !(await confirmDialog(t('v.leaveUnsaved'), t('v.leave')))) return;
    const headers = authHeaders();
    // revoke server-side; the page forgets the token whatever the answer
    fetch(`${API}/logout`, { method: 'POST', headers, cache: 'no-store' }).catch(() => {});
    history.replaceState(null, '', location.pathname);
    sessionEnded('login.signedOut');
  }

  // ---------------------------------------------------------------- views and routing

  function showView(name) {
    for (const view of ['login', 'worklist', 'viewer']) $(`#view-${view}`).hidden = view !== name;
    const signedIn = name !== 'login';
    $('#signout').hidden = !signedIn;
    $('#user-name').hidden = !signedIn;
    $('#live-indicator').hidden = !signedIn;
    document.body.dataset.view = name;
  }

  function route() {
    if (!state.session) { showLogin(state.loginMessage); return; }
    const match = /^#\/case\/(.+)$/.exec(location.hash);
    if (match) {
      const id = decodeURIComponent(match[1]);
      if (state.viewer && state.viewer.caseId === id) showView('viewer');
      else openCase(id);
      return;
    }
    closeViewer();
    showView('worklist');
    loadWorklist();
  }

  /** Leaving a case with an unsaved report asks first; "stay" puts the case URL back. */
  async function onHashChange() {
    const v = state.viewer;
    if (v && v.dirty && location.hash !== caseHash(v.caseId)) {
      if (!(await confirmDialog(t('v.leaveUnsaved'), t('v.leave')))) {
        history.pushState(null, '', caseHash(v.caseId));
        return;
      }
    }
    route();
  }

  const caseHash = (id) => `#/case/${enc(id)}`;

  // ---------------------------------------------------------------- sign-in

  function showLogin(message) {
    state.loginMessage = message;
    showView('login');
    renderLoginMessage();
    const user = $('#login-user');
    (user.value ? $('#login-password') : user).focus();
  }

  function renderLoginMessage() {
    const box = $('#login-error');
    const message = state.loginMessage;
    box.hidden = !message;
    box.textContent = message ? t(message.key, message.params) : '';
  }

  async function onLoginSubmit(event) {
    event.preventDefault();
    const userField = $('#login-user');
    const passwordField = $('#login-password');
    const user = userField.value.trim();
    const password = passwordField.value;
    if (!user) { userField.focus(); return; }
    if (!password) { passwordField.focus(); return; }

    state.loginMessage = null; // an old error must not stand beside a new attempt
    renderLoginMessage();
    const button = $('#login-submit');
    button.disabled = true;
    button.textContent = t('login.busy');
    try {
      const r = await api('POST', '/login', { user, password });
      state.session = { token: r.token, user: r.user, name: r.name, role: r.role, expert: r.expert, expires_at: r.expires_at };
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
      state.loginMessage = null;
      startSession(false);
    } catch (err) {
      state.loginMessage = loginErrorMessage(err);
      renderLoginMessage();
      passwordField.focus();
    } finally {
      passwordField.value = '';
      button.disabled = false;
      button.textContent = t('login.submit');
    }
  }

  function loginErrorMessage(err) {
    if (err.code === 'portal.badCredentials' || err.status === 401) return { key: 'login.badCredentials' };
    if (err.code === 'portal.throttled' || err.status === 429) return { key: 'login.throttled', params: { s: err.retryAfter || 60 } };
    if (err.code === 'portal.credentialsLapsed') return { key: 'login.lapsed' };
    if (err.code === 'network') return { key: 'err.network' };
    return { key: 'login.failed', params: { code: err.code || err.name } };
  }

  // ---------------------------------------------------------------- worklist

  let worklistLoad = null;
  let worklistAgain = false;
  let worklistTimer = null;

  /** One request at a time; a refresh asked for meanwhile runs once more afterwards. */
  function loadWorklist() {
    if (!state.session) return Promise.resolve();
    if (worklistLoad) { worklistAgain = true; return worklistLoad; }
    worklistLoad = (async () => {
      try {
        do {
          worklistAgain = false;
          const r = await api('GET', '/me/cases');
          if (typeof r.now_ms === 'number') state.clockSkew = r.now_ms - Date.now();
          state.cases = Array.isArray(r.cases) ? r.cases : [];
          state.worklistUpdated = Date.now();
          renderWorklist();
        } while (worklistAgain && state.session);
      } catch (err) {
        if (err.status !== 401 && err.name !== 'AbortError') toast(errorText(err), 'error');
      } finally {
        worklistLoad = null;
      }
    })();
    return worklistLoad;
  }

  /** Events come in bursts (offer + case); one refresh covers them. */
  function scheduleWorklistRefresh() {
    clearTimeout(worklistTimer);
    worklistTimer = setTimeout(loadWorklist, 250);
  }

  /** STAT first, then the nearest deadline; equal deadlines by priority. */
  function compareCases(a, b) {
    const statA = effectivePriority(a) === 'stat' ? 0 : 1;
    const statB = effectivePriority(b) === 'stat' ? 0 : 1;
    if (statA !== statB) return statA - statB;
    const dueA = a.deadline_ms ?? Infinity;
    const dueB = b.deadline_ms ?? Infinity;
    if (dueA !== dueB) return dueA - dueB;
    const rank = (PRIORITY_RANK[effectivePriority(a)] ?? 9) - (PRIORITY_RANK[effectivePriority(b)] ?? 9);
    return rank || String(a.id).localeCompare(String(b.id));
  }

  function renderWorklist() {
    const body = $('#worklist-body');
    const cases = [...state.cases].sort(compareCases);
    const rows = new Map();
    const trs = cases.map((c) => {
      // a row is rebuilt only when its case or the language changed
      const sig = `${I18N.lang()}|${state.reasons.get(c.id) || ''}|${JSON.stringify(c)}`;
      const old = state.rows.get(c.id);
      const tr = old && old.sig === sig ? old.tr : caseRow(c);
      rows.set(c.id, { sig, tr });
      return tr;
    });
    state.rows = rows;
    const same = trs.length === body.children.length && trs.every((tr, i) => body.children[i] === tr);
    if (!same) body.replaceChildren(...trs);
    $('#worklist-empty').hidden = cases.length > 0;
    const offered = cases.filter((c) => c.state === 'offered').length;
    $('#worklist-count').textContent = t('wl.count', { offered, accepted: cases.length - offered });
    $('#worklist-updated').textContent = state.worklistUpdated ? t('wl.updated', { time: I18N.formatTime(state.worklistUpdated) }) : '';
    updateCountdowns();
  }

  function priorityBadge(priority) {
    return el('span', { class: `badge prio-${priority}`, text: t(`priority.${priority}`) });
  }

  function urgencyBadge(urgency) {
    const u = urgency || 'none';
    return el('span', { class: `badge urg-${u}`, text: t(`urgency.${u}`) });
  }

  function caseRow(c) {
    const priority = effectivePriority(c);
    const escalated = c.escalated || (c.priority && c.priority !== priority);
    const findings = Array.isArray(c.findings) ? c.findings : [];
    const tr = el('tr', {
      'data-testid': 'case-row', 'data-case-id': c.id, 'data-state': c.state, 'data-priority': priority,
      class: priority === 'stat' ? 'row-stat' : null,
    });
    tr.append(
      el('td', null, priorityBadge(priority),
        escalated ? el('span', {
          class: 'flag flag-escalated', text: t('wl.escalated'),
          title: c.priority ? t('wl.escalatedTitle', { p: t(`priority.${c.priority}`) }) : null,
        }) : null),
      el('td', null, el('span', { class: `state-tag state-${c.state}`, text: t(`state.${c.state}`) })),
      el('td', null,
        el('div', { class: 'study-line', text: [c.modality, c.body_part].filter(Boolean).join(' · ') || '—' }),
        el('div', { class: 'sub' }, t('wl.images', { n: c.instances ?? '?' }),
          c.partial ? el('span', { class: 'flag flag-partial', 'data-testid': 'partial', title: t('wl.partialTitle'), text: t('wl.partial') }) : null)),
      el('td', null, ...breakAfterSlashes(c.specialty || '')),
      el('td', { text: c.site || '' }),
      el('td', null, urgencyBadge(c.urgency), findingsSummary(findings)),
      el('td', null,
        countdown('deadline', c.deadline_ms),
        c.state === 'offered' && c.accept_by_ms ? countdown('accept', c.accept_by_ms) : null),
      el('td', null, caseActions(c)),
    );
    return tr;
  }

  /** "CT/chest/thoracic" may wrap after a slash instead of inside a word. */
  function breakAfterSlashes(text) {
    return text.split('/').flatMap((part, i) => (i === 0 ? [part] : ['/', document.createElement('wbr'), part]));
  }

  /** "72%" for a finding's probability (0…1), or null when the screening gave none. */
  function percent(probability) {
    return typeof probability === 'number' && Number.isFinite(probability) ? `${Math.round(probability * 100)}%` : null;
  }

  /** One line per finding: code, probability, summary (codes and summaries are shown as written). */
  function findingLine(f) {
    const head = [f.code || '', percent(f.probability)].filter(Boolean).join(' ');
    return f.summary ? `${head}: ${f.summary}` : head;
  }

  /** Up to three findings in the row; all of them in the tooltip. */
  function findingsSummary(findings) {
    if (!findings.length) return null;
    return el('ul', { class: 'screen-findings', title: findings.map(findingLine).join('\n') },
      ...findings.slice(0, 3).map((f) => el('li', { text: findingLine(f) })));
  }

  function countdown(kind, at) {
    if (typeof at !== 'number') return el('span', { class: 'countdown', text: '—' });
    return el('span', {
      class: kind === 'accept' ? 'countdown accept' : 'countdown',
      'data-countdown': kind, 'data-at': at,
      'data-testid': kind === 'accept' ? 'accept-countdown' : 'sla-countdown',
    });
  }

  /** Ticks every second: SLA red under 10 minutes or overdue; accept-by red in its last minute. */
  function updateCountdowns() {
    const now = serverNow();
    for (const node of document.querySelectorAll('[data-countdown]')) {
      const left = Number(node.dataset.at) - now;
      if (node.dataset.countdown === 'accept') {
        node.textContent = left > 0 ? t('sla.acceptBy', { t: formatDuration(left) }) : t('sla.acceptPassed');
        node.classList.toggle('soon', left > 0 && left < ACCEPT_SOON_MS);
        node.classList.toggle('passed', left <= 0);
      } else {
        node.textContent = left >= 0 ? t('sla.left', { t: formatDuration(left) }) : t('sla.overdue', { t: formatDuration(left) });
        node.classList.toggle('soon', left < SLA_SOON_MS);
      }
    }
  }

  function reasonSelect(caseId, testid) {
    const select = el('select', { 'data-testid': testid, 'data-reason-for': caseId, 'aria-label': t('wl.reason') },
      el('option', { value: '', text: t('wl.reason') }),
      ...REASONS.map((r) => el('option', { value: r, text: t(`reason.${r}`) })));
    select.value = state.reasons.get(caseId) || '';
    return select;
  }

  function actionButton(action, testid, label, extra = {}) {
    return el('button', Object.assign({ type: 'button', class: 'btn btn-small', 'data-action': action, 'data-testid': testid, text: label }, extra));
  }

  function caseActions(c) {
    const reason = state.reasons.get(c.id);
    const box = el('div', { class: 'actions' });
    if (c.state === 'offered') {
      box.append(
        actionButton('accept', 'accept-case', t('wl.accept'), { class: 'btn btn-small btn-primary' }),
        actionButton('accept-open', 'open-case', t('wl.acceptOpen')),
        reasonSelect(c.id, 'decline-reason'),
        actionButton('decline', 'decline-case', t('wl.decline'), { class: 'btn btn-small btn-danger', disabled: !reason }),
      );
    } else {
      box.append(
        actionButton('open', 'open-case', t('wl.open'), { class: 'btn btn-small btn-primary' }),
        reasonSelect(c.id, 'release-reason'),
        actionButton('release', 'release-case', t('wl.release'), { class: 'btn btn-small btn-danger', disabled: !reason }),
      );
    }
    return box;
  }

  function onWorklistChange(event) {
    const select = event.target.closest('select[data-reason-for]');
    if (!select) return;
    const id = select.dataset.reasonFor;
    if (select.value) state.reasons.set(id, select.value); else state.reasons.delete(id);
    const button = select.parentElement.querySelector('[data-action=decline],[data-action=release]');
    if (button) button.disabled = !select.value;
  }

  async function onWorklistClick(event) {
    const button = event.target.closest('button[data-action]');
    if (!button || button.disabled) return;
    const id = button.closest('tr').dataset.caseId;
    button.disabled = true;
    try {
      switch (button.dataset.action) {
        case 'accept': await acceptCase(id); break;
        case 'accept-open': if (await acceptCase(id)) location.hash = caseHash(id); break;
        case 'open': location.hash = caseHash(id); break;
        case 'decline': await declineCase(id); break;
        case 'release': await releaseCase(id); break;
        default: break;
      }
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  }

  function onWorklistDoubleClick(event) {
    const row = event.target.closest('tr[data-testid=case-row]');
    if (row && row.dataset.state === 'accepted' && !event.target.closest('button, select')) location.hash = caseHash(row.dataset.caseId);
  }

  /** Puts the server's fresh copy of one case into the list at once (the full refresh follows). */
  function replaceCase(updated) {
    if (!updated || !updated.id) return;
    const i = state.cases.findIndex((c) => c.id === updated.id);
    if (i >= 0) state.cases[i] = updated; else state.cases.push(updated);
    renderWorklist();
  }

  function dropCase(id) {
    state.cases = state.cases.filter((c) => c.id !== id);
    state.reasons.delete(id);
    renderWorklist();
  }

  function caseActionFailed(err) {
    if (err.status === 401 || err.name === 'AbortError') return;
    toast(errorText(err), 'error');
  }

  async function acceptCase(id) {
    try {
      const r = await api('POST', `/cases/${enc(id)}/accept`);
      replaceCase(r && r.case);
      toast(t('wl.accepted'));
      return true;
    } catch (err) {
      caseActionFailed(err);
      return false;
    } finally {
      loadWorklist();
    }
  }

  async function declineCase(id) {
    const reason = state.reasons.get(id);
    if (!reason) return;
    try {
      await api('POST', `/cases/${enc(id)}/decline`, { reason });
      dropCase(id);
      toast(t('wl.declined'));
    } catch (err) {
      caseActionFailed(err);
    } finally {
      loadWorklist();
    }
  }

  async function releaseCase(id) {
    const reason = state.reasons.get(id);
    if (!reason || !(await confirmDialog(t('wl.confirmRelease'), t('wl.release')))) return;
    try {
      await api('POST', `/cases/${enc(id)}/release`, { reason });
      dropCase(id);
      toast(t('wl.released'));
    } catch (err) {
      caseActionFailed(err);
    } finally {
      loadWorklist();
    }
  }

  // ---------------------------------------------------------------- live updates (SSE over fetch)

  // EventSource cannot send an Authorization header, so the stream is read with fetch.
  const live = { state: 'offline', ctrl: null, retries: 0, timer: null, watchdog: null, lastData: 0 };
  const LIVE_STALE_MS = 45000; // three missed 15 s keepalives

  function setLive(value) {
    live.state = value;
    const indicator = $('#live-indicator');
    indicator.dataset.state = value;
    $('.text', indicator).textContent = t(`live.${value}`);
  }

  function startEvents() {
    stopEvents();
    live.retries = 0;
    live.watchdog = setInterval(() => {
      // a silently dead connection (no keepalive) is dropped so the reconnect logic takes over
      if (live.state === 'live' && live.ctrl && Date.now() - live.lastData > LIVE_STALE_MS) live.ctrl.abort();
    }, 5000);
    connectEvents();
  }

  function stopEvents() {
    clearTimeout(live.timer);
    clearInterval(live.watchdog);
    const ctrl = live.ctrl;
    live.ctrl = null; // marks the abort below as deliberate
    if (ctrl) ctrl.abort();
    setLive('offline');
  }

  async function connectEvents() {
    if (!state.session) return;
    const ctrl = new AbortController();
    live.ctrl = ctrl;
    setLive('connecting');
    try {
      const res = await authorizedFetch(`${API}/events`, {
        headers: authHeaders({ Accept: 'text/event-stream' }), signal: ctrl.signal, cache: 'no-store',
      });
      if (!res.ok || !res.body) throw new ApiError(res.status, `http.${res.status}`);
      live.retries = 0;
      live.lastData = Date.now();
      setLive('live');
      scheduleWorklistRefresh(); // whatever happened while disconnected
      await readEventStream(res.body, onServerEvent);
    } catch (_) {
      // dropped, refused or aborted by the watchdog: handled below
    }
    if (live.ctrl !== ctrl || !state.session) return; // stopped on purpose
    live.ctrl = null;
    setLive('offline');
    const delay = Math.min(30000, 1000 * 2 ** live.retries) * (0.75 + Math.random() * 0.5);
    live.retries = Math.min(live.retries + 1, 8);
    live.timer = setTimeout(connectEvents, delay);
  }

  /** Minimal text/event-stream parser: event/data fields, comments, blank line dispatches. */
  async function readEventStream(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let eventName = '';
    let data = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        live.lastData = Date.now();
        buffer += decoder.decode(value, { stream: true });
        for (;;) {
          const end = buffer.search(/[\r\n]/);
          if (end < 0) break;
          if (buffer[end] === '\r' && end === buffer.length - 1) break; // may be half of \r\n
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1));
          if (line === '') {
            if (data.length) onEvent(eventName || 'message', data.join('\n'));
            eventName = '';
            data = [];
          } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let fieldValue = colon < 0 ? '' : line.slice(colon + 1);
            if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
            if (field === 'event') eventName = fieldValue;
            else if (field === 'data') data.push(fieldValue);
          }
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  function onServerEvent(name, raw) {
    let message;
    try { message = JSON.parse(raw); } catch (_) { return; }
    if (name === 'offer') {
      scheduleWorklistRefresh();
      // in the worklist the new row speaks for itself; while reading, say it
      if (state.viewer && message.priority) {
        toast(t('wl.newOffer', { p: t(`priority.${message.priority}`) }), message.priority === 'stat' ? 'warn' : 'info', 8000);
      }
    } else if (name === 'case') {
      scheduleWorklistRefresh();
      const v = state.viewer;
      if (v && message.case === v.caseId && GONE_ACTIONS.includes(message.action) && !isSigned(v.report)) {
        v.gone = message.action;
        renderNotice(v);
        updateReportControls(v);
      }
    }
  }

  // ---------------------------------------------------------------- viewer: images

  /**
   * Rendered images by (instance, frame, window), as blob URLs. Fetches run at most
   * `parallel` at a time so the slice on screen is never stuck behind prefetches; the current
   * slice jumps the queue, stale prefetches are dropped when the reader moves on, and the
   * least recently used images are revoked beyond `limit` (about 100–300 kB each).
   */
  class ImageCache {
    constructor(signal, limit = 160, parallel = 4) {
      this.signal = signal;
      this.limit = limit;
      this.parallel = parallel;
      this.entries = new Map(); // insertion order = recency
      this.queue = [];
      this.active = 0;
      this.pinned = null;
      this.closed = false;
    }

    get(key, path, urgent) {
      let entry = this.entries.get(key);
      if (entry) {
        this.entries.delete(key);
        this.entries.set(key, entry);
        if (urgent && entry.queued) {
          this.queue.splice(this.queue.indexOf(entry), 1);
          this.queue.unshift(entry);
        }
        return entry.promise;
      }
      entry = { key, path, url: null, queued: true };
      entry.promise = new Promise((resolve, reject) => { entry.resolve = resolve; entry.reject = reject; });
      entry.promise.catch(() => {}); // a failed prefetch nobody waits for is not an error
      this.entries.set(key, entry);
      if (urgent) this.queue.unshift(entry); else this.queue.push(entry);
      this.pump();
      this.evict();
      return entry.promise;
    }

    has(key) {
      const entry = this.entries.get(key);
      return Boolean(entry && entry.url);
    }

    /** Forgets requests that have not started: the reader scrolled past them. */
    dropQueued() {
      for (const entry of this.queue) {
        this.entries.delete(entry.key);
        entry.reject(new DOMException('dropped', 'AbortError'));
      }
      this.queue = [];
    }

    pump() {
      while (!this.closed && this.active < this.parallel && this.queue.length) {
        const entry = this.queue.shift();
        entry.queued = false;
        this.active += 1;
        fetchImageURL(entry.path, this.signal).then((url) => {
          if (this.closed) { URL.revokeObjectURL(url); return; }
          entry.url = url;
          entry.resolve(url);
        }, (err) => {
          if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key); // let a later look retry
          entry.reject(err);
        }).finally(() => {
          this.active -= 1;
          this.pump();
        });
      }
    }

    evict() {
      for (const [key, entry] of this.entries) {
        if (this.entries.size <= this.limit) break;
        if (entry.url && key !== this.pinned) {
          URL.revokeObjectURL(entry.url);
          this.entries.delete(key);
        }
      }
    }

    close() {
      this.closed = true;
      this.dropQueued();
      for (const entry of this.entries.values()) if (entry.url) URL.revokeObjectURL(entry.url);
      this.entries.clear();
    }
  }

  function newViewer(caseId) {
    const abort = new AbortController();
    return {
      caseId,
      abort,
      cache: new ImageCache(abort.signal),
      thumbs: new Map(),        // series uid → Promise<blob URL>
      detail: null,
      study: '',
      series: [],
      slices: new Map(),        // series uid → [{ series, sop, frame }] (frame 0 = single-frame instance)
      notShown: new Map(),      // series uid → instances that cannot be displayed
      seriesUid: null,
      index: 0,
      direction: 1,
      preset: 'default',
      natural: null,            // [width, height] of the displayed image
      scale: 0,                 // screen pixels per image pixel
      shown: null,              // the slice on screen (for redrawing its marks)
      showSeq: 0,
      wheelCarry: 0,
      accepted: false,
      gone: null,
      report: null,
      dirty: false,
      editSeq: 0,
      saving: false,
      notice: null,
    };
  }

  function closeViewer() {
    const v = state.viewer;
    if (!v) return;
    state.viewer = null;
    v.abort.abort();
    v.cache.close();
    for (const pending of v.thumbs.values()) pending.then((url) => URL.revokeObjectURL(url), () => {});
    const img = $('#viewer-image');
    img.removeAttribute('src');
    for (const key of ['key', 'sop', 'frame', 'window']) delete img.dataset[key];
    img.dataset.state = 'empty';
    $('#viewer-overlay').replaceChildren();
    $('#series-strip').replaceChildren();
    $('#findings-list').replaceChildren();
    $('#finding-ticks').replaceChildren();
    delete $('#view-viewer').dataset.caseId;
  }

  async function openCase(id) {
    closeViewer();
    const v = newViewer(id);
    state.viewer = v;
    $('#view-viewer').dataset.caseId = id;
    clearViewerText();
    showView('viewer');
    setImageMessage(t('v.loading'));
    try {
      const detail = await api('GET', `/cases/${enc(id)}`, undefined, v.abort.signal);
      if (state.viewer !== v) return;
      v.detail = detail;
      v.study = (detail.study && detail.study.uid) || (detail.case && detail.case.study) || '';
      v.accepted = Boolean(detail.case && detail.case.state === 'accepted');
      buildSlices(v);
      renderBanner(v);
      renderNotice(v);
      renderSeriesStrip(v);
      renderFindings(v);
      setPresetButtons(v);
      renderReport(v, (await loadReport(v)) ?? detail.report ?? null, true);
      const first = v.series.find((s) => (v.slices.get(s.uid) || []).length) || v.series[0];
      if (first) selectSeries(v, first.uid, 0); else setImageMessage(t('v.noImages'));
      $('#image-area').focus({ preventScroll: true });
    } catch (err) {
      if (err.name === 'AbortError' || state.viewer !== v || err.status === 401) return;
      v.loadError = err;
      setImageMessage(t('v.loadFailed'));
      renderNotice(v);
    }
  }

  function clearViewerText() {
    for (const id of ['patient-name', 'patient-id', 'patient-sex', 'patient-birth', 'study-description', 'study-date', 'study-accession', 'slice-label', 'window-label']) {
      $(`#${id}`).textContent = '';
    }
    $('#case-priority').textContent = '';
    $('#case-due').replaceChildren();
    $('#viewer-notice').hidden = true;
    $('#report-findings').value = '';
    $('#report-impression').value = '';
    $('#report-critical').checked = false;
    $('#report-error').hidden = true;
    $('#report-dirty').hidden = true;
    $('#report-form').hidden = false;
    $('#report-final').hidden = true;
    $('#report-status').dataset.status = 'none';
    $('#report-status').textContent = '';
    $('#slice-label').dataset.index = '0';
    $('#slice-label').dataset.count = '0';
  }

  /** Slices per series in the server's order; multi-frame instances give one slice per frame. */
  function buildSlices(v) {
    v.series = (v.detail.series || []).slice();
    for (const s of v.series) { v.slices.set(s.uid, []); v.notShown.set(s.uid, 0); }
    for (const inst of v.detail.instances || []) {
      if (!v.slices.has(inst.series)) {
        v.series.push({ uid: inst.series, thumbnail: false, window: null });
        v.slices.set(inst.series, []);
        v.notShown.set(inst.series, 0);
      }
      if (inst.status !== 'ok') { v.notShown.set(inst.series, v.notShown.get(inst.series) + 1); continue; }
      const frames = Math.max(1, Number(inst.frames) || 1);
      const list = v.slices.get(inst.series);
      if (frames === 1) list.push({ series: inst.series, sop: inst.sop, frame: 0 });
      else for (let f = 1; f <= frames; f += 1) list.push({ series: inst.series, sop: inst.sop, frame: f });
    }
  }

  const currentSlices = (v) => (v && v.slices.get(v.seriesUid)) || [];
  const currentSeries = (v) => v.series.find((s) => s.uid === v.seriesUid) || null;

  function imagePath(v, slice, preset) {
    let path = `/dicomweb/studies/${enc(v.study)}/series/${enc(slice.series)}/instances/${enc(slice.sop)}`;
    if (slice.frame) path += `/frames/${slice.frame}`;
    path += '/rendered';
    const win = WINDOW_PRESETS[preset];
    return win ? `${path}?window=${win[0]},${win[1]}` : path;
  }

  const imageKey = (slice, preset) => `${slice.sop}#${slice.frame}@${preset}`;

  function selectSeries(v, uid, index) {
    v.seriesUid = uid;
    for (const b of document.querySelectorAll('[data-testid=series-thumb]')) b.setAttribute('aria-current', String(b.dataset.seriesUid === uid));
    const n = currentSlices(v).length;
    const slider = $('#slice-slider');
    slider.max = String(Math.max(1, n));
    slider.disabled = n < 2;
    renderFindingTicks(v);
    updateWindowLabel(v);
    v.index = clamp(index, 0, Math.max(0, n - 1));
    if (!n) {
      v.cache.dropQueued();
      updateSliceLabel(v);
      $('#viewer-image').dataset.state = 'empty';
      $('#viewer-image').removeAttribute('src');
      $('#viewer-overlay').replaceChildren();
      setImageMessage(t('v.noImages'));
      return;
    }
    showSlice(v, v.index);
  }

  function updateSliceLabel(v) {
    const n = currentSlices(v).length;
    const label = $('#slice-label');
    label.textContent = n ? t('v.slice', { k: v.index + 1, n }) : t('v.noSlices');
    label.dataset.index = String(n ? v.index + 1 : 0);
    label.dataset.count = String(n);
    $('#slice-slider').value = String(v.index + 1);
  }

  /** Shows slice `index` in the current window. Only the latest request may reach the screen. */
  async function showSlice(v, index) {
    const slices = currentSlices(v);
    if (!slices.length) return;
    index = clamp(index, 0, slices.length - 1);
    if (index !== v.index) v.direction = index > v.index ? 1 : -1;
    v.index = index;
    updateSliceLabel(v);

    const slice = slices[index];
    const key = imageKey(slice, v.preset);
    const seq = ++v.showSeq;
    const started = performance.now();
    const img = $('#viewer-image');
    img.dataset.state = 'loading';
    v.cache.dropQueued();
    v.cache.pinned = key;
    $('#image-spinner').hidden = v.cache.has(key);
    const pending = v.cache.get(key, imagePath(v, slice, v.preset), true);
    prefetchAround(v, index);
    try {
      const url = await pending;
      // decode off-screen first, so the visible image swaps without a blank frame
      const probe = new Image();
      probe.src = url;
      await probe.decode();
      if (seq !== v.showSeq || state.viewer !== v) return;
      img.src = url;
      await img.decode().catch(() => {});
      if (seq !== v.showSeq || state.viewer !== v) return;
      v.natural = [probe.naturalWidth, probe.naturalHeight];
      fitStage();
      drawOverlay(v, slice);
      // data-ms: request to decoded image on screen, read by the browser test as a speed figure
      Object.assign(img.dataset, {
        key, sop: slice.sop, frame: String(slice.frame), window: windowParam(v.preset), ms: String(Math.round(performance.now() - started)),
      });
      img.dataset.state = 'loaded';
      setImageMessage(null);
      $('#image-spinner').hidden = true;
    } catch (err) {
      if (seq !== v.showSeq || state.viewer !== v || err.name === 'AbortError') return;
      img.dataset.state = 'error';
      $('#image-spinner').hidden = true;
      setImageMessage(err.status === 403 && !v.accepted ? t('v.notAccepted') : t('v.imageError'));
    }
  }

  /** Neighbours ahead in the scrolling direction first, a couple behind. */
  function prefetchAround(v, index) {
    const slices = currentSlices(v);
    const d = v.direction;
    for (const step of [d, -d, 2 * d, 3 * d, -2 * d, 4 * d, 5 * d, 6 * d]) {
      const slice = slices[index + step];
      if (slice) v.cache.get(imageKey(slice, v.preset), imagePath(v, slice, v.preset), false);
    }
  }

  function windowParam(preset) {
    const win = WINDOW_PRESETS[preset];
    return win ? `${win[0]},${win[1]}` : 'default';
  }

  function setImageMessage(text) {
    const box = $('#image-message');
    box.hidden = !text;
    box.textContent = text || '';
  }

  /** Fits the image into the area keeping its aspect ratio; the overlay shares the stage box. */
  function fitStage() {
    const v = state.viewer;
    if (!v || !v.natural) return;
    const area = $('#image-area');
    const stage = $('#image-stage');
    const [w, h] = v.natural;
    const scale = Math.min(area.clientWidth / w, area.clientHeight / h);
    const dw = Math.max(1, Math.floor(w * scale));
    const dh = Math.max(1, Math.floor(h * scale));
    stage.style.width = `${dw}px`;
    stage.style.height = `${dh}px`;
    stage.style.left = `${Math.floor((area.clientWidth - dw) / 2)}px`;
    stage.style.top = `${Math.floor((area.clientHeight - dh) / 2)}px`;
    const changed = v.scale !== scale;
    v.scale = scale;
    if (changed && v.shown) drawOverlay(v, v.shown); // keeps the label's size on screen constant
  }

  /** Finding boxes are in pixels of the image, so the SVG's user space is the image's pixel grid. */
  function drawOverlay(v, slice) {
    const svg = $('#viewer-overlay');
    const [w, h] = v.natural;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    v.shown = slice;
    const fontSize = 13 / (v.scale || 1); // in image pixels, so 13 px on screen
    const marks = [];
    for (const f of v.detail.findings || []) {
      if (f.instance !== slice.sop || !Array.isArray(f.box) || f.box.length !== 4) continue;
      const [x, y, bw, bh] = f.box.map(Number);
      const ns = 'http://www.w3.org/2000/svg';
      const rect = document.createElementNS(ns, 'rect');
      for (const [name, value] of Object.entries({ x, y, width: bw, height: bh, 'data-testid': 'finding-box' })) rect.setAttribute(name, value);
      const label = document.createElementNS(ns, 'text');
      label.setAttribute('x', x);
      const gap = 4 / (v.scale || 1);
      label.setAttribute('y', y > fontSize + gap ? y - gap : y + bh + fontSize + gap);
      label.setAttribute('font-size', fontSize);
      label.textContent = f.code || '';
      marks.push(rect, label);
    }
    svg.replaceChildren(...marks);
  }

  function renderFindingTicks(v) {
    const ticks = $('#finding-ticks');
    const slices = currentSlices(v);
    const marks = [];
    if (slices.length > 1) {
      for (const f of v.detail.findings || []) {
        const i = f.instance ? slices.findIndex((s) => s.sop === f.instance) : -1;
        if (i >= 0) {
          const tick = el('span');
          tick.style.left = `${(100 * i) / (slices.length - 1)}%`;
          marks.push(tick);
        }
      }
    }
    ticks.replaceChildren(...marks);
  }

  function setPreset(v, preset) {
    if (!(preset in WINDOW_PRESETS)) return;
    v.preset = preset;
    setPresetButtons(v);
    updateWindowLabel(v);
    showSlice(v, v.index);
  }

  function setPresetButtons(v) {
    for (const b of document.querySelectorAll('[data-testid=window-preset]')) b.setAttribute('aria-pressed', String(b.dataset.preset === v.preset));
  }

  function updateWindowLabel(v) {
    const preset = WINDOW_PRESETS[v.preset];
    const series = currentSeries(v);
    const stored = series && series.window;
    let text;
    if (preset) text = t('v.windowValue', { c: preset[0], w: preset[1] });
    else if (stored && stored.center !== undefined) text = t('v.windowValue', { c: stored.center, w: stored.width });
    else text = t('v.windowDefault');
    $('#window-label').textContent = text;
  }

  /** Wheel: one slice per notch (deltaY ≈ 100), small trackpad deltas accumulate. */
  function onWheel(event) {
    const v = state.viewer;
    if (!v || !currentSlices(v).length) return;
    event.preventDefault();
    let dy = event.deltaY;
    if (event.deltaMode === 1) dy *= 40; else if (event.deltaMode === 2) dy *= 400;
    let steps;
    if (Math.abs(dy) >= 50) {
      steps = Math.sign(dy) * Math.max(1, Math.round(Math.abs(dy) / 100));
      v.wheelCarry = 0;
    } else {
      v.wheelCarry += dy;
      steps = Math.trunc(v.wheelCarry / 50);
      v.wheelCarry -= steps * 50;
    }
    if (steps) showSlice(v, v.index + steps);
  }

  function onKeyDown(event) {
    const v = state.viewer;
    if (!v || $('#view-viewer').hidden || $('#confirm-dialog').open) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest('input, textarea, select, [contenteditable]')) return;
    const n = currentSlices(v).length;
    const page = Math.max(1, Math.round(n / 10));
    const moves = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -page, PageDown: page };
    if (event.key in moves) showSlice(v, v.index + moves[event.key]);
    else if (event.key === 'Home') showSlice(v, 0);
    else if (event.key === 'End') showSlice(v, n - 1);
    else if (event.key in PRESET_KEYS) setPreset(v, PRESET_KEYS[event.key]);
    else return;
    event.preventDefault();
  }

  // ---------------------------------------------------------------- viewer: header, series, findings

  function renderBanner(v) {
    const study = v.detail.study || {};
    const c = v.detail.case || {};
    const name = $('#patient-name');
    name.textContent = study.patient_name || '—'; // exactly as the hospital wrote it
    name.title = study.patient_name || '';
    $('#patient-id').textContent = study.patient_id || '—';
    $('#patient-sex').textContent = study.patient_sex || '—';
    $('#patient-birth').textContent = formatDicomDate(study.patient_birth_date);
    $('#study-description').textContent = study.study_description || '';
    $('#study-description').title = study.study_description || '';
    $('#study-date').textContent = formatDicomDate(study.study_date);
    $('#study-accession').textContent = study.accession_number || '—';
    const priority = effectivePriority(c);
    const badge = $('#case-priority');
    badge.className = `badge prio-${priority}`;
    badge.textContent = t(`priority.${priority}`);
    $('#case-due').replaceChildren(countdown('deadline', c.deadline_ms));
    updateCountdowns();
  }

  function renderNotice(v) {
    const box = $('#viewer-notice');
    const acceptButton = $('#viewer-accept');
    let text = null;
    if (v.loadError) text = `${t('v.loadFailed')} ${errorText(v.loadError)}`;
    else if (v.gone) text = t('v.caseGone', { action: t(`action.${v.gone}`) });
    else if (v.detail && !v.accepted) text = t('v.notAccepted');
    box.hidden = !text;
    $('#viewer-notice-text').textContent = text || '';
    acceptButton.hidden = !(v.detail && !v.accepted && !v.gone && !v.loadError);
  }

  function seriesTitle(s) {
    const number = s.number !== undefined && s.number !== null ? `${s.number} ` : '';
    return `${number}${s.description || s.modality || ''}`.trim() || '—';
  }

  function renderSeriesStrip(v) {
    const strip = $('#series-strip');
    strip.replaceChildren(...v.series.map((s) => {
      const count = (v.slices.get(s.uid) || []).length;
      const missing = v.notShown.get(s.uid) || 0;
      const thumb = el('span', { class: 'thumb', text: s.modality || '' });
      if (s.thumbnail) showThumbnail(v, s, thumb);
      return el('button', {
        type: 'button', class: 'series-thumb', 'data-testid': 'series-thumb', 'data-series-uid': s.uid,
        'aria-current': String(s.uid === v.seriesUid), title: s.description || '',
      },
      thumb,
      el('span', { class: 'desc', text: seriesTitle(s) }),
      el('span', { class: 'sub', text: t('v.seriesImages', { n: count }) }),
      missing ? el('span', { class: 'warn', text: t('v.seriesNotShown', { n: missing }) }) : null);
    }));
  }

  function showThumbnail(v, series, holder) {
    if (!v.thumbs.has(series.uid)) {
      const path = `/dicomweb/studies/${enc(v.study)}/series/${enc(series.uid)}/thumbnail`;
      const pending = fetchImageURL(path, v.abort.signal);
      pending.catch(() => {});
      v.thumbs.set(series.uid, pending);
    }
    v.thumbs.get(series.uid).then((url) => {
      if (state.viewer === v) holder.replaceChildren(el('img', { src: url, alt: '' }));
    }, () => { /* keep the modality placeholder */ });
  }

  function onSeriesClick(event) {
    const button = event.target.closest('[data-testid=series-thumb]');
    const v = state.viewer;
    if (!button || !v || button.dataset.seriesUid === v.seriesUid) return;
    v.direction = 1;
    selectSeries(v, button.dataset.seriesUid, 0);
  }

  function locateInstance(v, sop) {
    for (const s of v.series) {
      const index = (v.slices.get(s.uid) || []).findIndex((slice) => slice.sop === sop);
      if (index >= 0) return { series: s.uid, index };
    }
    return null;
  }

  function renderFindings(v) {
    const list = $('#findings-list');
    const findings = v.detail.findings || [];
    if (!findings.length) {
      list.replaceChildren(el('li', { class: 'muted', text: t('f.none') }));
      return;
    }
    list.replaceChildren(...findings.map((f, i) => {
      const target = f.instance ? locateInstance(v, f.instance) : null;
      const probability = percent(f.probability);
      return el('li', { 'data-testid': 'finding' },
        // per-finding urgency when the server gives one, else the model's probability
        f.urgency ? urgencyBadge(f.urgency)
          : probability ? el('span', { class: 'badge prob', title: t('f.probability'), text: probability }) : null,
        el('span', { class: 'what' },
          el('span', { class: 'code', text: f.code || '' }),
          f.summary ? ` ${f.summary}` : '',
          f.source ? el('span', { class: 'source', title: t('f.source'), text: ` · ${f.source}` }) : null),
        target ? el('button', { type: 'button', class: 'btn btn-small', 'data-finding': i, title: t('f.showTitle'), text: t('f.show') }) : null);
    }));
  }

  function onFindingClick(event) {
    const button = event.target.closest('button[data-finding]');
    const v = state.viewer;
    if (!button || !v) return;
    const f = (v.detail.findings || [])[Number(button.dataset.finding)];
    const target = f && locateInstance(v, f.instance);
    if (!target) return;
    if (target.series !== v.seriesUid) selectSeries(v, target.series, target.index);
    else showSlice(v, target.index);
  }

  async function acceptFromViewer() {
    const v = state.viewer;
    if (!v) return;
    const button = $('#viewer-accept');
    button.disabled = true;
    try {
      if (await acceptCase(v.caseId)) openCase(v.caseId); // reload: images and report now allowed
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- report

  const isSigned = (report) => Boolean(report && (report.status === 'final' || report.status === 'amended'));

  /** The report endpoints answer with the report itself or wrapped as {report}; accept both. */
  const unwrapReport = (r) => (r && r.report !== undefined && r.status === undefined ? r.report : r);

  async function loadReport(v) {
    try {
      return unwrapReport(await api('GET', `/cases/${enc(v.caseId)}/report`, undefined, v.abort.signal));
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      return err.status === 404 ? null : undefined; // undefined: fall back to the case's copy
    }
  }

  /** fill: put the report's text into the editor (not while the reader has unsaved edits). */
  function renderReport(v, report, fill) {
    v.report = report || null;
    const signed = isSigned(v.report);
    $('#report-form').hidden = signed;
    $('#report-final').hidden = !signed;
    if (signed) {
      renderSignedReport(v.report);
      setDirty(v, false);
    } else if (fill && !v.dirty) {
      $('#report-findings').value = (v.report && v.report.findings) || '';
      $('#report-impression').value = (v.report && v.report.impression) || '';
      $('#report-critical').checked = Boolean(v.report && v.report.critical);
    }
    renderReportStatus(v);
    updateReportControls(v);
  }

  function renderReportStatus(v) {
    const r = v.report;
    const status = r ? r.status || 'draft' : 'none';
    const node = $('#report-status');
    node.dataset.status = status;
    let time = r && (status === 'draft' ? r.updated_ms : r.signed_ms || r.updated_ms);
    if (status === 'amended' && Array.isArray(r.addenda) && r.addenda.length) time = r.addenda[r.addenda.length - 1].signed_ms || time;
    node.textContent = status === 'none' ? t('r.status.none') : t(`r.status.${status}`, { time: time ? I18N.formatDateTime(time) : '' });
  }

  function renderSignedReport(r) {
    $('#final-findings').textContent = r.findings || '';
    $('#final-impression').textContent = r.impression || '';
    $('#final-critical').hidden = !r.critical;
    $('#final-signed').textContent = t('r.signedBy', {
      name: r.author_name || r.author || '', id: r.author || '', time: r.signed_ms ? I18N.formatDateTime(r.signed_ms) : '',
    });
    const hash = $('#final-hash');
    hash.textContent = r.hash ? `${r.hash.slice(0, 16)}…` : '—';
    hash.title = r.hash || '';
    const addenda = Array.isArray(r.addenda) ? r.addenda : [];
    $('#addenda-box').hidden = !addenda.length;
    $('#addenda-list').replaceChildren(...addenda.map((a) => el('li', null,
      el('p', { class: 'prewrap', text: a.text || '' }),
      el('p', { class: 'muted small', text: t('r.addendumBy', { name: a.author_name || a.author || '', time: a.signed_ms ? I18N.formatDateTime(a.signed_ms) : '', reason: a.reason || '' }) }))));
  }

  function updateReportControls(v) {
    const editable = v.accepted && !v.gone && !v.saving && !isSigned(v.report);
    for (const id of ['report-findings', 'report-impression', 'report-critical', 'report-save', 'report-sign']) $(`#${id}`).disabled = !editable;
    const canAmend = isSigned(v.report) && !v.saving;
    for (const id of ['addendum-text', 'addendum-reason', 'addendum-submit']) $(`#${id}`).disabled = !canAmend;
  }

  function setDirty(v, dirty) {
    v.dirty = dirty;
    $('#report-dirty').hidden = !dirty;
  }

  function showFormError(id, text) {
    const node = $(`#${id}`);
    node.hidden = !text;
    node.textContent = text || '';
  }

  function onReportInput() {
    const v = state.viewer;
    if (!v) return;
    v.editSeq += 1;
    setDirty(v, true);
  }

  async function saveReport(final) {
    const v = state.viewer;
    if (!v || v.saving) return;
    const body = {
      findings: $('#report-findings').value,
      impression: $('#report-impression').value,
      critical: $('#report-critical').checked,
      final,
    };
    showFormError('report-error', null);
    if (final) {
      if (!body.impression.trim()) {
        showFormError('report-error', t('r.needImpression'));
        $('#report-impression').focus();
        return;
      }
      const message = body.critical ? `${t('r.confirmSign')}\n${t('r.confirmSignCritical')}` : t('r.confirmSign');
      if (!(await confirmDialog(message, t('r.confirmOk')))) return;
      if (state.viewer !== v) return;
    }
    const editSeq = v.editSeq;
    v.saving = true;
    updateReportControls(v);
    try {
      const r = await api('POST', `/cases/${enc(v.caseId)}/report`, body, v.abort.signal);
      if (state.viewer !== v) return;
      if (v.editSeq === editSeq) setDirty(v, false); // edits made while saving stay unsaved
      v.saving = false;
      renderReport(v, unwrapReport(r) || (await loadReport(v)) || null, false);
      toast(final ? t('r.signed') : t('r.saved'));
      if (final) scheduleWorklistRefresh();
    } catch (err) {
      if (err.name === 'AbortError' || err.status === 401) return;
      showFormError('report-error', err.code === 'portal.state' ? t('r.needAccept') : errorText(err));
    } finally {
      v.saving = false;
      if (state.viewer === v) updateReportControls(v);
    }
  }

  async function onAddendumSubmit(event) {
    event.preventDefault();
    const v = state.viewer;
    if (!v || v.saving) return;
    const text = $('#addendum-text').value.trim();
    const reason = $('#addendum-reason').value.trim();
    if (!text || !reason) { showFormError('addendum-error', t('r.addendumEmpty')); return; }
    showFormError('addendum-error', null);
    v.saving = true;
    updateReportControls(v);
    try {
      const r = await api('POST', `/cases/${enc(v.caseId)}/report`, { addendum: text, reason }, v.abort.signal);
      if (state.viewer !== v) return;
      v.saving = false;
      renderReport(v, unwrapReport(r) || (await loadReport(v)) || v.report, false);
      $('#addendum-text').value = '';
      $('#addendum-reason').value = '';
      toast(t('r.addendumAdded'));
    } catch (err) {
      if (err.name === 'AbortError' || err.status === 401) return;
      showFormError('addendum-error', errorText(err));
    } finally {
      v.saving = false;
      if (state.viewer === v) updateReportControls(v);
    }
  }

  // ---------------------------------------------------------------- language

  function onLanguageChange(event) {
    I18N.setLang(event.target.value, true);
    rerenderForLanguage();
  }

  /** Static markup is retranslated by i18n.js; everything built here is rebuilt. */
  function rerenderForLanguage() {
    setLive(live.state);
    renderLoginMessage();
    const loginButton = $('#login-submit');
    if (loginButton.disabled) loginButton.textContent = t('login.busy');
    renderWorklist();
    const v = state.viewer;
    if (v && v.detail) {
      renderBanner(v);
      renderNotice(v);
      renderSeriesStrip(v);
      renderFindings(v);
      updateSliceLabel(v);
      updateWindowLabel(v);
      renderReport(v, v.report, false);
      setDirty(v, v.dirty);
    }
    updateCountdowns();
  }

  // ---------------------------------------------------------------- start

  function wire() {
    $('#login-form').addEventListener('submit', onLoginSubmit);
    $('#signout').addEventListener('click', signOut);
    $('#lang-switch').addEventListener('change', onLanguageChange);
    $('#worklist-refresh').addEventListener('click', () => loadWorklist());
    $('#worklist-body').addEventListener('click', onWorklistClick);
    $('#worklist-body').addEventListener('change', onWorklistChange);
    $('#worklist-body').addEventListener('dblclick', onWorklistDoubleClick);
    $('#viewer-back').addEventListener('click', () => { location.hash = '#/worklist'; });
    $('#viewer-accept').addEventListener('click', acceptFromViewer);
    $('#series-strip').addEventListener('click', onSeriesClick);
    $('#findings-list').addEventListener('click', onFindingClick);
    $('#window-presets').addEventListener('click', (event) => {
      const button = event.target.closest('[data-preset]');
      if (button && state.viewer) setPreset(state.viewer, button.dataset.preset);
    });
    $('#image-area').addEventListener('wheel', onWheel, { passive: false });
    $('#slice-slider').addEventListener('input', (event) => {
      if (state.viewer) showSlice(state.viewer, Number(event.target.value) - 1);
    });
    new ResizeObserver(fitStage).observe($('#image-area'));
    document.addEventListener('keydown', onKeyDown);
    for (const id of ['report-findings', 'report-impression']) $(`#${id}`).addEventListener('input', onReportInput);
    $('#report-critical').addEventListener('change', onReportInput);
    $('#report-save').addEventListener('click', () => saveReport(false));
    $('#report-sign').addEventListener('click', () => saveReport(true));
    $('#addendum-form').addEventListener('submit', onAddendumSubmit);
    $('#report-form').addEventListener('submit', (event) => event.preventDefault());
    window.addEventListener('hashchange', onHashChange);
    window.addEventListener('beforeunload', (event) => {
      if (state.viewer && state.viewer.dirty) event.preventDefault();
    });
    setInterval(updateCountdowns, 1000);
    // a safety net for when the event stream is down
    setInterval(() => { if (state.session && live.state !== 'live') loadWorklist(); }, 30000);
  }

  function boot() {
    I18N.setLang(I18N.lang(), false);
    $('#lang-switch').value = I18N.lang();
    setLive('offline');
    wire();
    state.session = loadSession();
    if (state.session) startSession(true); else showLogin(null);
  }

  boot();
})();
