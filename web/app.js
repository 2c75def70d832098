/* shoal dashboard: plain JavaScript (ES2017), no framework, no build step,
 * nothing fetched but the daemon's own API (docs/web.md).
 *
 * One page, hash routes: #/swarms, #/swarm/ID, #/add, #/node.  The swarms
 * live in one Map by id, fed by the event stream (GET /api/v1/events) or,
 * when it fails three times in a row, by polling GET /api/v1/swarms pages.
 * The list renders only the rows in view.  No inline script or style (the
 * CSP forbids them): looks are classes in style.css, sizes and positions
 * are set through element.style.
 */
'use strict';

(function () {
  var ROW_H = 32;               /* px; style.css --row-h */
  var OVERSCAN = 8;             /* rows rendered beyond the visible ones */
  var POLL_MS = 5000;
  var STREAM_RETRY_MS = 30000;
  var STREAM_FAILS = 3;         /* consecutive stream errors before polling */
  var DETAIL_MS = 3000;         /* refresh of the open swarm's files, peers, pieces */
  var CHART_S = 600;            /* the rate chart's window: 10 minutes */
  var CSRF_KEY = 'shoal.csrf';

  var $ = function (id) { return document.getElementById(id); };

  /* ------------------------------------------------------------ state */

  var swarms = new Map();       /* id -> swarm object as the API lists it */
  var node = {};                /* node counters from the stream or /status */
  var history = new Map();      /* id -> rate ring buffer (see sample()) */
  var view = { list: [], dirty: true, sortKey: 'name', sortDir: 1, query: '', state: '' };
  var selectedId = null;
  var route = { name: 'swarms', id: null };
  var loggedOut = false;
  var firstRenderMarked = false;
  var dataMarked = false;

  /* ------------------------------------------------------------ formatting */

  function fmtBytes(n) {
    if (n === null || n === undefined || isNaN(n)) return '\u2014';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    var i = 0;
    n = Number(n);
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
  }
  function fmtRate(n) {
    if (!n) return '\u2014';
    return fmtBytes(n) + '/s';
  }
  function fmtDuration(s) {
    if (s === null || s === undefined || !isFinite(s)) return '\u221E';
    s = Math.round(s);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  /* Progress as text: floored, so "100 %" only when every piece is in. */
  function fmtPct(p) {
    if (p === null || p === undefined) return '\u2014';
    var v = Math.floor(p * 1000) / 10;
    return (v === 100 ? '100' : v.toFixed(1)) + ' %';
  }
  function tr(s) { return s.transfer || {}; }
  /* Uploaded over downloaded; a swarm that downloaded nothing since the
   * daemon started (a share, a resumed seed) counts what it has instead. */
  function ratioOf(s) {
    var t = tr(s);
    var up = t.uploaded || 0;
    var base = t.downloaded > 0 ? t.downloaded : (s.bytes_have || 0);
    return base > 0 ? up / base : null;
  }
  function fmtRatio(r) { return r === null ? '\u2014' : r.toFixed(2); }
  /* Seconds to done at the current download rate; null when not downloading. */
  function etaOf(s) {
    if (s.state !== 'downloading' && s.state !== 'metadata') return null;
    var rate = tr(s).download_rate || 0;
    if (rate <= 0 || !s.total_size) return Infinity;
    return Math.max(0, (s.total_size - (s.bytes_have || 0)) / rate);
  }
  function fmtEta(s) {
    var e = etaOf(s);
    return e === null ? '' : fmtDuration(e);
  }
  function progressOf(s) {
    if (typeof s.progress === 'number') return s.progress;
    return s.total_size ? (s.bytes_have || 0) / s.total_size : 0;
  }
  function nameOf(s) { return s.name || (s.info_hash ? s.info_hash.slice(0, 16) + '\u2026' : '#' + s.id); }
  function barClass(s) {
    if (s.state === 'error') return 'bar error';
    if (s.state === 'paused') return 'bar paused';
    if (progressOf(s) >= 1) return 'bar done';
    return 'bar';
  }

  /* ------------------------------------------------------------ API */

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  /* The session's token, which the login page put in localStorage: it
   * goes with every request (GET too) beside the cookie.  Browsers send
   * a cookie of 127.0.0.1 to any port of it; localStorage is per port, so
   * a server of another local user never sees the token (docs/web.md). */
  /* Read each time: a login in another tab replaces the session and its
   * token, and this tab then follows it. */
  function csrfNow() {
    try { return localStorage.getItem(CSRF_KEY); } catch (e) { return null; }
  }
  /* Forget the token the daemon refused, not one a newer login stored. */
  function forgetCsrf(refused) {
    try {
      if (refused === undefined || localStorage.getItem(CSRF_KEY) === refused) {
        localStorage.removeItem(CSRF_KEY);
      }
    } catch (e) { /* ignore */ }
  }

  /* fetch() one API path; resolves to the parsed JSON, rejects with an
   * ApiError whose message is the daemon's own (shown verbatim). */
  function api(method, path, body, retried) {
    return Promise.resolve(csrfNow()).then(function (token) {
      var headers = {};
      if (token) headers['X-Shoal-CSRF'] = token;
      var init = { method: method, credentials: 'same-origin', cache: 'no-store', headers: headers };
      if (body !== undefined && body !== null) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      return fetch(path, init).then(function (r) {
        return r.text().then(function (text) {
          var doc = null;
          try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
          if (r.ok) {
            if (!loggedOut) hide('notice-login');
            return doc;
          }
          var err = doc && doc.error ? doc.error : {};
          if (r.status === 401) notLoggedIn();
          if (r.status === 403 && err.code === 'csrf') {
            /* A newer login (another tab) may have stored another token:
             * try once with it; else the session is gone, log in again. */
            var now = csrfNow();
            if (!retried && now && now !== token) return api(method, path, body, true);
            forgetCsrf(token);
            notLoggedIn();
          }
          throw new ApiError(r.status, err.code || 'http_' + r.status,
                             err.message || ('HTTP ' + r.status + ' ' + r.statusText));
        });
      });
    });
  }
  function errText(e) {
    if (e instanceof ApiError) return e.message;
    return 'The daemon did not answer (' + (e && e.message ? e.message : String(e)) + ')';
  }

  function notLoggedIn() {
    if (!loggedOut) show('notice-login');
    setConn('offline');
  }

  /* ------------------------------------------------------------ DOM helpers */

  function show(id) { $(id).classList.remove('hidden'); }
  function hide(id) { $(id).classList.add('hidden'); }
  function setText(id, text) {
    var el = typeof id === 'string' ? $(id) : id;
    var s = text === null || text === undefined ? '' : String(text);
    if (el.textContent !== s) el.textContent = s;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function makeBar() {
    var bar = el('div', 'bar');
    var fill = el('div', 'fill');
    var label = el('span', 'label');
    bar.appendChild(fill);
    bar.appendChild(label);
    return bar;
  }
  function setBar(bar, p, cls) {
    var pct = Math.max(0, Math.min(1, p || 0)) * 100;
    var w = pct.toFixed(2) + '%';
    if (bar.firstChild.style.width !== w) bar.firstChild.style.width = w;
    setText(bar.lastChild, fmtPct(p));
    if (cls && bar.className !== cls) bar.className = cls;
    bar.setAttribute('data-progress', String(p || 0));
  }
  var errTimer = null;
  function flashError(text) {
    var n = $('notice-error');
    n.textContent = text;
    n.classList.remove('hidden');
    clearTimeout(errTimer);
    errTimer = setTimeout(function () { n.classList.add('hidden'); }, 8000);
  }

  /* ------------------------------------------------------------ the store */

  function mergeSwarm(id, changes) {
    var s = swarms.get(id);
    if (!s) { s = { id: id }; swarms.set(id, s); }
    Object.keys(changes).forEach(function (k) {
      var v = changes[k];
      if (k === 'transfer' && v && typeof v === 'object' && s.transfer && typeof s.transfer === 'object') {
        Object.keys(v).forEach(function (tk) { s.transfer[tk] = v[tk]; });
      } else {
        s[k] = v;
      }
    });
  }
  function replaceAll(list) {
    var next = new Map();
    list.forEach(function (s) { next.set(s.id, s); });
    swarms = next;
    history.forEach(function (_, id) { if (!swarms.has(id)) history.delete(id); });
    changed();
  }
  function changed() {
    view.dirty = true;
    if (!dataMarked) { dataMarked = true; performance.mark('shoal-data'); }
    scheduleRender();
  }

  /* ------------------------------------------------------------ rate history */

  /* One ring buffer per swarm that has moved bytes since the page opened
   * (or whose page is open), one sample a second, CHART_S seconds long. */
  function ring() {
    return { t: new Float64Array(CHART_S), d: new Float32Array(CHART_S), u: new Float32Array(CHART_S), n: 0, head: 0 };
  }
  function push(h, t, d, u) {
    h.t[h.head] = t; h.d[h.head] = d; h.u[h.head] = u;
    h.head = (h.head + 1) % CHART_S;
    if (h.n < CHART_S) h.n++;
  }
  function sample() {
    var now = Date.now() / 1000;
    swarms.forEach(function (s, id) {
      var t = tr(s);
      var d = t.download_rate || 0, u = t.upload_rate || 0;
      var h = history.get(id);
      if (!h) {
        if (!d && !u && !(route.name === 'swarm' && String(id) === route.id)) return;
        h = ring();
        history.set(id, h);
      }
      push(h, now, d, u);
    });
    if (route.name === 'swarm') drawChart();
  }

  /* ------------------------------------------------------------ live updates */

  var conn = { mode: 'connecting', es: null, fails: 0, pollTimer: null, retryTimer: null, polling: false };

  function setConn(state) {
    var c = $('conn');
    if (c.getAttribute('data-state') === state) return;
    c.setAttribute('data-state', state);
    c.textContent = state;
    c.title = { live: 'Live: the event stream is open',
                polling: 'Polling every 5 s: the event stream failed; it is retried every 30 s',
                connecting: 'Connecting to the event stream',
                offline: 'Offline: the daemon does not answer' }[state] || state;
  }

  function openStream() {
    if (conn.es) { conn.es.close(); conn.es = null; }
    var es;
    try {
      /* EventSource sends no custom header: the token goes in the query. */
      var t = csrfNow();
      es = new EventSource('/api/v1/events' + (t ? '?csrf=' + encodeURIComponent(t) : ''),
                           { withCredentials: false });
    } catch (e) {
      streamFailed();
      return;
    }
    conn.es = es;
    if (conn.mode !== 'polling') setConn('connecting');
    es.addEventListener('open', function () { /* counted as good on the first event */ });
    es.addEventListener('snapshot', function (ev) {
      var doc = parse(ev);
      if (!doc) return;
      streamGood();
      replaceAll(doc.swarms || []);
      if (doc.node) { node = doc.node; renderNodeRates(); }
    });
    es.addEventListener('swarm-added', function (ev) {
      var s = parse(ev);
      if (!s || s.id === undefined) return;
      streamGood();
      swarms.set(s.id, s);
      changed();
    });
    es.addEventListener('swarm-changed', function (ev) {
      var c = parse(ev);
      if (!c || c.id === undefined) return;
      streamGood();
      mergeSwarm(c.id, c);
      changed();
    });
    es.addEventListener('swarm-removed', function (ev) {
      var c = parse(ev);
      if (!c || c.id === undefined) return;
      streamGood();
      swarms.delete(c.id);
      history.delete(c.id);
      changed();
    });
    es.addEventListener('node', function (ev) {
      var c = parse(ev);
      if (!c) return;
      streamGood();
      Object.keys(c).forEach(function (k) { node[k] = c[k]; });
      renderNodeRates();
    });
    es.addEventListener('error', function () {
      if (conn.es !== es) return;
      conn.fails++;
      if (conn.fails >= STREAM_FAILS || conn.mode === 'polling') {
        es.close();
        conn.es = null;
        streamFailed();
        return;
      }
      if (conn.fails === 1) pollOnce();   /* show something meanwhile; also finds a 401 */
      if (es.readyState === EventSource.CLOSED) {
        /* The browser gave up (an answer that is not an event stream):
         * reconnect by hand, after a second. */
        conn.es = null;
        setTimeout(function () { if (!conn.es && conn.mode !== 'polling') openStream(); }, 1000);
      }
      /* else the browser reconnects by itself, sending Last-Event-ID. */
    });
  }
  function parse(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }
  function streamGood() {
    conn.fails = 0;
    if (conn.mode !== 'live') {
      conn.mode = 'live';
      stopPolling();
    }
    setConn('live');
  }
  function streamFailed() {
    if (loggedOut) return;
    if (conn.mode !== 'polling') {
      conn.mode = 'polling';
      startPolling();
    }
    clearTimeout(conn.retryTimer);
    conn.retryTimer = setTimeout(function () {
      conn.fails = STREAM_FAILS - 1;   /* one error sends it back to polling */
      openStream();
    }, STREAM_RETRY_MS);
  }
  function startPolling() {
    stopPolling();
    pollOnce();
    conn.pollTimer = setInterval(pollOnce, POLL_MS);
  }
  function stopPolling() {
    clearInterval(conn.pollTimer);
    conn.pollTimer = null;
    clearTimeout(conn.retryTimer);
    conn.retryTimer = null;
  }
  /* Every page of GET /api/v1/swarms (limit 1000), then /status for the
   * node's rates. */
  function pollOnce() {
    if (conn.polling || loggedOut) return;
    conn.polling = true;
    var all = [];
    function page(after) {
      return api('GET', '/api/v1/swarms?limit=1000' + (after ? '&after=' + after : '')).then(function (doc) {
        all = all.concat(doc.swarms || []);
        if (doc.next !== null && doc.next !== undefined) return page(doc.next);
        return null;
      });
    }
    page(0).then(function () {
      replaceAll(all);
      return api('GET', '/api/v1/status');
    }).then(function (st) {
      var t = st.transfer || {};
      node.download_rate = t.download_rate;
      node.upload_rate = t.upload_rate;
      node.peers = st.peers ? st.peers.connected : t.peers;
      renderNodeRates();
      if (conn.mode !== 'live') setConn('polling');
    }).catch(function (e) {
      if (conn.mode !== 'live') setConn('offline');
      if (!(e instanceof ApiError)) return;
    }).then(function () { conn.polling = false; });
  }
  function renderNodeRates() {
    var d = node.download_rate, u = node.upload_rate;
    if (d === undefined && u === undefined) { setText('node-rates', ''); return; }
    setText('node-rates', '\u2193 ' + fmtRate(d) + '  \u2191 ' + fmtRate(u));
  }

  /* ------------------------------------------------------------ the swarms list */

  var SORTS = {
    name: function (s) { return nameOf(s).toLowerCase(); },
    state: function (s) { return s.state || ''; },
    progress: function (s) { return progressOf(s); },
    size: function (s) { return s.total_size || 0; },
    down: function (s) { return tr(s).download_rate || 0; },
    up: function (s) { return tr(s).upload_rate || 0; },
    eta: function (s) { var e = etaOf(s); return e === null ? Number.MAX_VALUE : (isFinite(e) ? e : Number.MAX_VALUE / 2); },
    peers: function (s) { return tr(s).peers || 0; },
    ratio: function (s) { var r = ratioOf(s); return r === null ? -1 : r; }
  };

  function rebuildList() {
    var q = view.query.toLowerCase();
    var st = view.state;
    var key = SORTS[view.sortKey];
    var dir = view.sortDir;
    var list = [];
    swarms.forEach(function (s) {
      if (st && s.state !== st) return;
      if (q && nameOf(s).toLowerCase().indexOf(q) < 0) return;
      list.push(s);
    });
    /* Decorate once, then sort: the key of 5,000 swarms is computed
     * 5,000 times, not 5,000 log 5,000. */
    var dec = list.map(function (s) { return { k: key(s), s: s }; });
    dec.sort(function (a, b) {
      if (a.k < b.k) return -dir;
      if (a.k > b.k) return dir;
      return a.s.id - b.s.id;
    });
    view.list = dec.map(function (d) { return d.s; });
    view.dirty = false;
  }

  var rowPool = [];
  var renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(function () {
      renderQueued = false;
      render();
    });
  }
  function render() {
    if (route.name === 'swarms') renderList();
    else if (route.name === 'swarm') renderDetailHead();
  }

  function makeRow() {
    var r = el('div', 'row grid-row');
    r.setAttribute('data-testid', 'swarm-row');
    r.setAttribute('role', 'row');
    var cells = {};
    ['name', 'state', 'progress', 'size', 'down', 'up', 'eta', 'peers', 'ratio'].forEach(function (c) {
      var cell = el('div', 'c c-' + c + (['size', 'down', 'up', 'eta', 'peers', 'ratio'].indexOf(c) >= 0 ? ' num' : ''));
      cell.setAttribute('data-col', c);
      cells[c] = cell;
      r.appendChild(cell);
    });
    var a = el('a');
    cells.name.appendChild(a);
    cells.progress.appendChild(makeBar());
    r._cells = cells;
    r._link = a;
    return r;
  }

  function renderList() {
    if (view.dirty) rebuildList();
    var list = view.list;
    var scroll = $('swarm-scroll');
    var spacer = $('swarm-spacer');
    var h = list.length * ROW_H + 'px';
    if (spacer.style.height !== h) spacer.style.height = h;
    var total = swarms.size;
    setText('swarm-count', list.length === total ? total + ' swarm' + (total === 1 ? '' : 's')
                                                 : list.length + ' of ' + total);
    if (total === 0) show('swarm-empty'); else hide('swarm-empty');

    var top = scroll.scrollTop;
    var height = scroll.clientHeight || 600;
    var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    var last = Math.min(list.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    var need = last - first;
    while (rowPool.length < need) {
      var nr = makeRow();
      rowPool.push(nr);
      spacer.appendChild(nr);
    }
    for (var i = 0; i < rowPool.length; i++) {
      var row = rowPool[i];
      if (i >= need) {
        if (!row.classList.contains('hidden')) row.classList.add('hidden');
        continue;
      }
      var idx = first + i;
      fillRow(row, list[idx], idx);
    }
    if (!firstRenderMarked && need > 0) {
      firstRenderMarked = true;
      performance.mark('shoal-first-render');
    }
  }

  function fillRow(row, s, idx) {
    row.classList.remove('hidden');
    var y = 'translateY(' + (idx * ROW_H) + 'px)';
    if (row.style.transform !== y) row.style.transform = y;
    var id = String(s.id);
    if (row.getAttribute('data-id') !== id) {
      row.setAttribute('data-id', id);
      row._link.href = '#/swarm/' + encodeURIComponent(id);
    }
    row.setAttribute('data-state', s.state || '');
    var sel = String(selectedId) === id;
    if (row.classList.contains('selected') !== sel) row.classList.toggle('selected', sel);
    row.setAttribute('aria-selected', sel ? 'true' : 'false');
    var c = row._cells;
    var name = nameOf(s);
    setText(row._link, name);
    if (row._link.title !== name) row._link.title = name;
    setText(c.state, s.state === 'error' ? 'error' : s.state);
    var stc = 'c c-state' + (s.state === 'error' ? ' st-error' : s.state === 'paused' ? ' st-paused' : '');
    if (c.state.className !== stc) c.state.className = stc;
    if (s.state === 'error' && s.error) c.state.title = s.error; else c.state.title = '';
    setBar(c.progress.firstChild, progressOf(s), barClass(s));
    setText(c.size, fmtBytes(s.total_size));
    var t = tr(s);
    setText(c.down, fmtRate(t.download_rate));
    setText(c.up, fmtRate(t.upload_rate));
    setText(c.eta, fmtEta(s));
    setText(c.peers, t.peers === undefined ? '' : t.peers);
    setText(c.ratio, fmtRatio(ratioOf(s)));
  }

  function selectIndex(i) {
    var list = view.list;
    if (!list.length) return;
    i = Math.max(0, Math.min(list.length - 1, i));
    selectedId = list[i].id;
    var scroll = $('swarm-scroll');
    var y = i * ROW_H;
    if (y < scroll.scrollTop) scroll.scrollTop = y;
    else if (y + ROW_H > scroll.scrollTop + scroll.clientHeight) scroll.scrollTop = y + ROW_H - scroll.clientHeight;
    scheduleRender();
  }
  function selectedIndex() {
    if (selectedId === null) return -1;
    for (var i = 0; i < view.list.length; i++) if (view.list[i].id === selectedId) return i;
    return -1;
  }

  function setupList() {
    var scroll = $('swarm-scroll');
    scroll.addEventListener('scroll', scheduleRender, { passive: true });
    window.addEventListener('resize', scheduleRender);
    $('search').addEventListener('input', function () {
      view.query = this.value;
      view.dirty = true;
      scroll.scrollTop = 0;
      scheduleRender();
    });
    $('state-filter').addEventListener('change', function () {
      view.state = this.value;
      view.dirty = true;
      scroll.scrollTop = 0;
      scheduleRender();
    });
    Array.prototype.forEach.call(document.querySelectorAll('#swarm-head [data-sort]'), function (b) {
      b.addEventListener('click', function () {
        var k = b.getAttribute('data-sort');
        if (view.sortKey === k) view.sortDir = -view.sortDir;
        else { view.sortKey = k; view.sortDir = (k === 'name' || k === 'state' || k === 'eta') ? 1 : -1; }
        view.dirty = true;
        markSort();
        scheduleRender();
      });
    });
    markSort();
    /* One listener for every row of the pool. */
    $('swarm-spacer').addEventListener('click', function (ev) {
      var row = ev.target.closest('.grid-row');
      if (!row) return;
      selectedId = Number(row.getAttribute('data-id'));
      scheduleRender();
    });
    $('swarm-spacer').addEventListener('dblclick', function (ev) {
      var row = ev.target.closest('.grid-row');
      if (row) location.hash = '#/swarm/' + row.getAttribute('data-id');
    });
  }
  function markSort() {
    Array.prototype.forEach.call(document.querySelectorAll('#swarm-head [data-sort]'), function (b) {
      var k = b.getAttribute('data-sort');
      if (k === view.sortKey) b.setAttribute('aria-sort', view.sortDir > 0 ? 'ascending' : 'descending');
      else b.removeAttribute('aria-sort');
    });
  }

  /* ------------------------------------------------------------ one swarm */

  var detail = { id: null, doc: null, timer: null, pieces: null, piecesMissing: false, seq: 0 };

  function currentSwarm() {
    if (detail.id === null) return null;
    var s = swarms.get(detail.id);
    if (s) return s;
    return detail.doc;
  }

  function openDetail(idText) {
    closeDetail();
    detail.seq++;
    detail.id = /^\d+$/.test(idText) ? Number(idText) : idText;
    detail.doc = null;
    detail.pieces = null;
    detail.piecesMissing = false;
    setText('detail-msg', '');
    setText('swarm-limits-msg', '');
    $('swarm-limit-down').value = '';
    $('swarm-limit-up').value = '';
    $('files-table').tBodies[0].textContent = '';
    $('peers-table').tBodies[0].textContent = '';
    hide('trackers-section');
    hide('piece-map-note');
    setText('piece-count', '');
    if (!history.has(detail.id)) history.set(detail.id, ring());
    renderDetailHead();
    refreshDetail(true);
    detail.timer = setInterval(refreshDetail, DETAIL_MS);
    drawChart();
  }
  function closeDetail() {
    clearInterval(detail.timer);
    detail.timer = null;
    detail.id = null;
    detail.doc = null;
  }

  function refreshDetail(first) {
    var id = detail.id, seq = detail.seq;
    if (id === null) return;
    var path = '/api/v1/swarms/' + encodeURIComponent(id);
    api('GET', path).then(function (doc) {
      if (seq !== detail.seq) return;
      detail.doc = doc;
      /* The list's object may lag (polling) or be missing (an id typed by
       * hand as a hash prefix): the answer is fresher, merge it. */
      if (doc && doc.id !== undefined) {
        if (typeof detail.id !== 'number') { detail.id = doc.id; history.set(doc.id, history.get(doc.id) || ring()); }
        var copy = {};
        Object.keys(doc).forEach(function (k) { if (k !== 'files') copy[k] = doc[k]; });
        if (swarms.has(doc.id)) mergeSwarm(doc.id, copy); else swarms.set(doc.id, copy);
        view.dirty = true;
      }
      if (first && doc && doc.transfer) {
        if (doc.transfer.download_limit) $('swarm-limit-down').value = String(doc.transfer.download_limit);
        if (doc.transfer.upload_limit) $('swarm-limit-up').value = String(doc.transfer.upload_limit);
      }
      renderDetailHead();
      renderFiles(doc.files || []);
    }).catch(function (e) {
      if (seq !== detail.seq) return;
      if (e instanceof ApiError && e.status === 404) {
        setText('detail-msg', 'No such swarm (removed?)');
        $('detail-msg').className = 'msg error';
      }
    });
    api('GET', path + '/peers').then(function (doc) {
      if (seq === detail.seq) renderPeers(doc.peers || []);
    }).catch(function () { /* shown by the swarm's own answer */ });
    api('GET', path + '/trackers').then(function (doc) {
      if (seq === detail.seq) renderTrackers(doc.trackers || []);
    }).catch(function () { hide('trackers-section'); });
    if (!detail.piecesMissing) {
      api('GET', path + '/pieces').then(function (doc) {
        if (seq !== detail.seq) return;
        detail.pieces = doc;
        drawPieces();
      }).catch(function (e) {
        if (seq !== detail.seq) return;
        if (e instanceof ApiError && (e.code === 'not_found' || e.status === 405)) {
          detail.piecesMissing = true;
          $('piece-map-note').textContent = 'This daemon does not serve a piece map.';
          show('piece-map-note');
        }
      });
    }
  }

  function renderDetailHead() {
    var s = currentSwarm();
    if (!s) { setText('detail-name', 'Swarm ' + (route.id || '')); return; }
    setText('detail-name', nameOf(s));
    document.title = nameOf(s) + ' \u2014 shoal';
    setText('detail-state', s.state);
    setText('detail-progress', fmtPct(progressOf(s)) + '  (' + fmtBytes(s.bytes_have) + ' of ' + fmtBytes(s.total_size) + ')');
    var fill = $('detail-fill');
    fill.style.width = (Math.min(1, progressOf(s)) * 100).toFixed(2) + '%';
    fill.parentNode.className = barClass(s) + ' big';
    setText('detail-size', fmtBytes(s.total_size));
    var t = tr(s);
    setText('detail-peers', t.peers === undefined ? '' : t.peers + (t.known_peers !== undefined ? ' connected, ' + t.known_peers + ' known' : ''));
    $('detail-peers').setAttribute('data-value', t.peers === undefined ? '' : String(t.peers));
    $('detail-size').setAttribute('data-value', String(s.total_size || 0));
    setText('detail-rates', '\u2193 ' + fmtRate(t.download_rate) + '   \u2191 ' + fmtRate(t.upload_rate) +
            (etaOf(s) !== null ? '   ETA ' + fmtEta(s) : ''));
    setText('detail-ratio', fmtRatio(ratioOf(s)) + '  (' + fmtBytes(t.uploaded || 0) + ' up, ' + fmtBytes(t.downloaded || 0) + ' down since start)');
    setText('detail-role', s.role === 'share' ? 'share (seeded in place)' : s.role === 'join' ? 'join' : s.role);
    setText('detail-format', s.format || '\u2014');
    setText('detail-root', s.root || '');
    setText('detail-hash', s.info_hash || '');
    if ($('detail-magnet').value !== (s.magnet || '')) $('detail-magnet').value = s.magnet || '';
    if (s.state === 'error' && s.error) {
      setText('detail-error', s.error);
      show('detail-error'); show('detail-error-label');
    } else {
      hide('detail-error'); hide('detail-error-label');
    }
    var busy = s.state === 'hashing' || s.state === 'checking' || s.state === 'error';
    $('btn-pause').disabled = s.state === 'paused' || busy;
    $('btn-resume').disabled = s.state !== 'paused';
    $('btn-verify').disabled = busy || !s.format;
  }

  function renderFiles(files) {
    var body = $('files-table').tBodies[0];
    /* Rebuild only when the list changed; else update the bars. */
    if (body.rows.length !== files.length) {
      body.textContent = '';
      files.forEach(function (f) {
        var rowEl = body.insertRow();
        rowEl.setAttribute('data-testid', 'file-row');
        var p = rowEl.insertCell(); p.className = 'path';
        var sz = rowEl.insertCell(); sz.className = 'num';
        var pr = rowEl.insertCell();
        pr.appendChild(makeBar());
      });
    }
    files.forEach(function (f, i) {
      var r = body.rows[i];
      setText(r.cells[0], f.path);
      setText(r.cells[1], fmtBytes(f.size));
      var p = f.pieces ? (f.pieces_have || 0) / f.pieces : (f.size === 0 ? 1 : 0);
      setBar(r.cells[2].firstChild, p, p >= 1 ? 'bar done' : 'bar');
    });
  }

  function peerFlags(p) {
    var f = '';
    if (p.am_interested && !p.peer_choking) f += 'D';
    else if (p.am_interested) f += 'd';
    else if (!p.peer_choking) f += 'K';
    if (p.peer_interested && !p.am_choking) f += 'U';
    else if (p.peer_interested) f += 'u';
    else if (!p.am_choking) f += '?';
    return f;
  }
  function transportOf(p) {
    if (!p.encrypted) return 'plain';
    return p.cipher ? 'encrypted (' + p.cipher + ')' : 'encrypted';
  }
  function renderPeers(peers) {
    var body = $('peers-table').tBodies[0];
    body.textContent = '';
    if (!peers.length) show('peers-none'); else hide('peers-none');
    peers.forEach(function (p) {
      var r = body.insertRow();
      r.setAttribute('data-testid', 'peer-row');
      r.insertCell().textContent = p.address + (p.direction ? (p.direction === 'out' ? ' \u2192' : ' \u2190') : '');
      var c = r.insertCell(); c.className = 'opt'; c.textContent = p.client || '';
      r.insertCell().textContent = transportOf(p);
      c = r.insertCell(); c.className = 'num'; c.textContent = fmtRate(p.download_rate);
      c = r.insertCell(); c.className = 'num'; c.textContent = fmtRate(p.upload_rate);
      c = r.insertCell(); c.className = 'mono'; c.textContent = peerFlags(p);
      c.title = 'am_choking ' + !!p.am_choking + ', am_interested ' + !!p.am_interested +
                ', peer_choking ' + !!p.peer_choking + ', peer_interested ' + !!p.peer_interested;
    });
  }
  function renderTrackers(list) {
    if (!list.length) { hide('trackers-section'); return; }
    show('trackers-section');
    var body = $('trackers-table').tBodies[0];
    body.textContent = '';
    list.forEach(function (t) {
      var r = body.insertRow();
      r.setAttribute('data-testid', 'tracker-row');
      var c = r.insertCell(); c.className = 'path'; c.textContent = t.url;
      r.insertCell().textContent = String(t.tier);
      r.insertCell().textContent = t.status + (t.current ? '' : ' (standby)');
      c = r.insertCell(); c.className = 'num opt'; c.textContent = t.peers === null || t.peers === undefined ? '\u2014' : String(t.peers);
      c = r.insertCell(); c.className = 'opt'; c.textContent = t.last_error || t.warning || '';
    });
  }

  /* ---- canvases */

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
  }
  /* Size a canvas's backing store to its CSS box at the device's pixel ratio. */
  function fitCanvas(c) {
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(c.clientWidth * dpr));
    var h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w) c.width = w;
    if (c.height !== h) c.height = h;
    return dpr;
  }

  function decodeBits(b64, n) {
    var bin;
    try { bin = atob(b64 || ''); } catch (e) { return null; }
    var out = new Uint8Array(n);
    for (var i = 0; i < n; i++) {
      var byte = bin.charCodeAt(i >> 3) || 0;
      out[i] = (byte >> (7 - (i & 7))) & 1;   /* high bit = piece 0 */
    }
    return out;
  }
  function drawPieces() {
    var c = $('piece-map');
    var doc = detail.pieces;
    if (!doc || route.name !== 'swarm') return;
    var n = doc.num_pieces || 0;
    setText('piece-count', (doc.pieces_have || 0) + ' of ' + n);
    c.setAttribute('data-have', String(doc.pieces_have || 0));
    c.setAttribute('data-pieces', String(n));
    var dpr = fitCanvas(c);
    var ctx = c.getContext('2d');
    var W = c.width, H = c.height;
    ctx.clearRect(0, 0, W, H);
    if (!n) return;
    var bits = decodeBits(doc.bitfield, n);
    if (!bits) return;
    /* Cells as large as fit (2 to 12 CSS px); past one cell per piece,
     * each cell stands for a run of pieces and its shade is the share had. */
    var cell = Math.floor(Math.sqrt((W * H) / n));
    cell = Math.max(Math.round(2 * dpr), Math.min(Math.round(12 * dpr), cell));
    var cols = Math.max(1, Math.floor(W / cell));
    var rows = Math.max(1, Math.floor(H / cell));
    var cells = Math.min(n, cols * rows);
    var per = n / cells;
    var have = cssVar('--bar-done'), none = cssVar('--bar-bg'), part = cssVar('--bar');
    var gap = cell >= 4 * dpr ? Math.max(1, Math.round(dpr)) : 0;
    for (var i = 0; i < cells; i++) {
      var a = Math.floor(i * per), b = Math.max(a + 1, Math.floor((i + 1) * per));
      var k = 0;
      for (var j = a; j < b; j++) k += bits[j];
      var frac = k / (b - a);
      ctx.globalAlpha = 1;
      ctx.fillStyle = frac >= 1 ? have : frac <= 0 ? none : part;
      if (frac > 0 && frac < 1) ctx.globalAlpha = 0.35 + 0.65 * frac;
      var x = (i % cols) * cell, y = Math.floor(i / cols) * cell;
      ctx.fillRect(x, y, cell - gap, cell - gap);
    }
    ctx.globalAlpha = 1;
  }

  function drawChart() {
    if (route.name !== 'swarm' || detail.id === null) return;
    var c = $('rate-chart');
    var dpr = fitCanvas(c);
    var ctx = c.getContext('2d');
    var W = c.width, H = c.height;
    ctx.clearRect(0, 0, W, H);
    var h = history.get(detail.id);
    var now = Date.now() / 1000;
    var max = 0, i, k;
    var n = h ? h.n : 0;
    for (i = 0; i < n; i++) {
      k = (h.head - n + i + CHART_S) % CHART_S;
      if (h.t[k] >= now - CHART_S) max = Math.max(max, h.d[k], h.u[k]);
    }
    /* A round top of the scale: 1, 2 or 5 times a power of 1024 bytes/s. */
    var MULT = [1, 2, 5, 10, 20, 50, 100, 200, 500];
    var scale = 1024, step = 0, unit = 1024;
    while (scale < max) {
      step++;
      if (step === MULT.length) { step = 0; unit *= 1024; }
      scale = unit * MULT[step];
    }
    ctx.strokeStyle = cssVar('--line');
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (i = 1; i < 4; i++) { var gy = Math.round(H * i / 4) + 0.5; ctx.moveTo(0, gy); ctx.lineTo(W, gy); }
    ctx.stroke();
    setText('rate-chart-scale', 'top: ' + fmtRate(scale) + '; ' + (n ? Math.min(n, CHART_S) + ' s recorded' : 'recording from now'));
    c.setAttribute('data-samples', String(n));
    if (!n) return;
    function line(arr, color) {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      var started = false;
      for (var j = 0; j < n; j++) {
        var q = (h.head - n + j + CHART_S) % CHART_S;
        var age = now - h.t[q];
        if (age > CHART_S) continue;
        var x = W - (age / CHART_S) * W;
        var y = H - (arr[q] / scale) * (H - 4 * dpr) - 2 * dpr;
        if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
    line(h.d, cssVar('--down'));
    line(h.u, cssVar('--up'));
  }

  /* ---- actions */

  function act(kind) {
    var s = currentSwarm();
    if (!s) return Promise.resolve();
    var msg = $('detail-msg');
    msg.className = 'msg';
    msg.textContent = kind + '\u2026';
    return swarmAction(s, kind).then(function () {
      msg.textContent = kind === 'verify' ? 'checking every piece' : '';
      refreshDetail();
    }).catch(function (e) {
      msg.className = 'msg error';
      msg.textContent = errText(e);
    });
  }
  function swarmAction(s, kind) {
    return api('POST', '/api/v1/swarms/' + s.id + '/' + kind, {}).then(function (doc) {
      if (doc && doc.id !== undefined && kind !== 'verify') { mergeSwarm(doc.id, doc); changed(); }
      else if (doc && doc.swarm) { mergeSwarm(doc.swarm.id, doc.swarm); changed(); }
      return doc;
    });
  }

  /* The remove dialog: "Keep data" for every swarm, "Delete data" only for
   * joins (a shared directory is never deleted). */
  var removing = null;
  function askRemove(s) {
    if (!s) return;
    removing = s;
    setText('remove-name', nameOf(s));
    setText('remove-msg', '');
    var join = s.role === 'join';
    $('remove-text').textContent = join
      ? 'The swarm stops and is forgotten. "Delete data" also deletes the files it downloaded (' + fmtBytes(s.bytes_have) + ' in ' + (s.root || '') + ').'
      : 'The swarm stops and is forgotten; the shared directory ' + (s.root || '') + ' is left as it is.';
    if (join) show('remove-delete'); else hide('remove-delete');
    var d = $('remove-dialog');
    if (typeof d.showModal === 'function') d.showModal(); else d.setAttribute('open', '');
    $('remove-cancel').focus();
  }
  function doRemove(deleteData) {
    var s = removing;
    if (!s) return;
    var body = deleteData && s.role === 'join' ? { delete_data: true } : null;
    $('remove-keep').disabled = $('remove-delete').disabled = true;
    api('DELETE', '/api/v1/swarms/' + s.id, body).then(function () {
      swarms.delete(s.id);
      history.delete(s.id);
      if (selectedId === s.id) selectedId = null;
      changed();
      closeRemove();
      if (route.name === 'swarm') location.hash = '#/swarms';
    }).catch(function (e) {
      setText('remove-msg', errText(e));
    }).then(function () {
      $('remove-keep').disabled = $('remove-delete').disabled = false;
    });
  }
  function closeRemove() {
    removing = null;
    var d = $('remove-dialog');
    if (d.open) { if (typeof d.close === 'function') d.close(); else d.removeAttribute('open'); }
  }

  function setupDetail() {
    $('btn-pause').addEventListener('click', function () { act('pause'); });
    $('btn-resume').addEventListener('click', function () { act('resume'); });
    $('btn-verify').addEventListener('click', function () { act('verify'); });
    $('btn-remove').addEventListener('click', function () { askRemove(currentSwarm()); });
    $('remove-keep').addEventListener('click', function () { doRemove(false); });
    $('remove-delete').addEventListener('click', function () { doRemove(true); });
    $('remove-cancel').addEventListener('click', closeRemove);
    $('remove-dialog').addEventListener('close', function () { removing = null; });
    $('detail-magnet').addEventListener('focus', function () { this.select(); });
    $('swarm-limits').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var s = currentSwarm();
      if (!s) return;
      var body = limitsBody($('swarm-limit-down').value, $('swarm-limit-up').value);
      var msg = $('swarm-limits-msg');
      msg.className = 'msg';
      api('POST', '/api/v1/swarms/' + s.id + '/limits', body).then(function (doc) {
        var t = (doc && doc.transfer) || doc || {};
        msg.textContent = 'down ' + limitText(t.download_limit) + ', up ' + limitText(t.upload_limit);
        if (doc && doc.id !== undefined) { mergeSwarm(doc.id, doc); changed(); }
      }).catch(function (e) { msg.className = 'msg error'; msg.textContent = errText(e); });
    });
    window.addEventListener('resize', function () { if (route.name === 'swarm') { drawChart(); drawPieces(); } });
  }
  /* A limit field: empty keeps the value; a plain number is bytes per second;
   * text like "500K" goes to the daemon as typed (it parses the suffix). */
  function limitValue(v) {
    v = v.trim();
    if (v === '') return undefined;
    return /^\d+$/.test(v) ? Number(v) : v;
  }
  function limitsBody(down, up) {
    var body = {};
    var d = limitValue(down), u = limitValue(up);
    if (d !== undefined) body.download = d;
    if (u !== undefined) body.upload = u;
    return body;
  }
  function limitText(n) {
    if (n === undefined || n === null) return '?';
    return n ? fmtRate(n) : 'unlimited';
  }

  /* ------------------------------------------------------------ add */

  function addResult(doc, what) {
    hide('add-error');
    var s = doc && doc.swarm ? doc.swarm : doc;
    var r = $('add-result');
    r.textContent = '';
    if (s && s.id !== undefined) {
      swarms.set(s.id, s);
      changed();
      r.appendChild(document.createTextNode((doc.existing ? 'Already there: ' : what + ': ')));
      var a = el('a', null, nameOf(s));
      a.href = '#/swarm/' + s.id;
      a.setAttribute('data-testid', 'add-result-link');
      r.appendChild(a);
      r.appendChild(document.createTextNode(' (' + s.state + ')'));
    } else {
      r.textContent = what;
    }
    show('add-result');
  }
  function addError(e) {
    hide('add-result');
    $('add-error').textContent = errText(e);
    show('add-error');
  }
  function intoValue() {
    var v = $('add-into').value.trim();
    return v ? v : undefined;
  }
  function busy(form, on) {
    Array.prototype.forEach.call(form.querySelectorAll('button'), function (b) { b.disabled = on; });
  }
  function setupAdd() {
    $('form-link').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var form = this;
      var body = { link: $('add-link').value.trim() };
      var into = intoValue();
      if (into) body.into = into;
      var peers = $('add-peers').value.split(/[\s,]+/).filter(function (p) { return p; });
      if (peers.length) body.peers = peers;
      busy(form, true);
      api('POST', '/api/v1/swarms', body).then(function (doc) {
        addResult(doc, 'Joined');
        $('add-link').value = '';
      }).catch(addError).then(function () { busy(form, false); });
    });
    $('form-torrent').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var form = this;
      var file = $('add-file').files[0];
      if (!file) return;
      busy(form, true);
      readBase64(file).then(function (b64) {
        var body = { torrent: b64 };
        var into = intoValue();
        if (into) body.into = into;
        return api('POST', '/api/v1/swarms', body);
      }).then(function (doc) {
        addResult(doc, 'Joined');
        $('add-file').value = '';
      }).catch(addError).then(function () { busy(form, false); });
    });
    $('form-share').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var form = this;
      var body = { share: $('share-path').value.trim(), format: $('share-format').value };
      busy(form, true);
      api('POST', '/api/v1/swarms', body).then(function (doc) {
        addResult(doc, 'Sharing');
        $('share-path').value = '';
      }).catch(addError).then(function () { busy(form, false); });
    });
  }
  /* A file's bytes as base64, through a data: URL (FileReader). */
  function readBase64(file) {
    return new Promise(function (resolve, reject) {
      var fr = new FileReader();
      fr.onload = function () {
        var s = String(fr.result);
        resolve(s.slice(s.indexOf(',') + 1));
      };
      fr.onerror = function () { reject(new ApiError(0, 'read', 'Could not read ' + file.name)); };
      fr.readAsDataURL(file);
    });
  }

  /* ------------------------------------------------------------ node */

  var nodeTimer = null;
  function openNode() {
    refreshNode();
    clearInterval(nodeTimer);
    nodeTimer = setInterval(refreshNode, 5000);
  }
  function refreshNode() {
    api('GET', '/api/v1/status').then(function (st) {
      var n = st.node || {}, t = st.transfer || {}, sw = st.swarms || {};
      setText('node-version', n.version);
      setText('node-uptime', fmtDuration(n.uptime_s) + (n.started_at ? ' (since ' + n.started_at + ')' : ''));
      setText('node-peer-port', n.peer_port);
      setText('node-api', n.api);
      setText('node-data-dir', n.data_dir);
      setText('node-id', n.id);
      setText('node-swarms', (sw.total || 0) + ' (' + (sw.seeding || 0) + ' seeding, ' + (sw.downloading || 0) + ' downloading)');
      setText('node-peers', st.peers ? st.peers.connected : '');
      setText('node-encryption', t.running ? t.encryption + ', cipher ' + t.cipher : '');
      setText('node-limits-now', 'Now: down ' + limitText(t.download_limit) + ', up ' + limitText(t.upload_limit) + '.');
      if (!st.dht || !st.dht.running) setText('node-dht', 'not running' + (st.dht && st.dht.note ? ' (' + st.dht.note + ')' : ''));
    }).catch(function () { /* the banner says why */ });
    api('GET', '/api/v1/dht').then(function (d) {
      if (!d.running) { setText('node-dht', 'not running'); return; }
      setText('node-dht', d.nodes + ' (' + d.good_nodes + ' good)' + (d.ipv6 ? ', IPv4 and IPv6' : ''));
    }).catch(function () { /* /status said it */ });
  }
  function setupNode() {
    $('node-limits').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var msg = $('node-limits-msg');
      msg.className = 'msg';
      api('POST', '/api/v1/limits', limitsBody($('limit-down').value, $('limit-up').value)).then(function (doc) {
        msg.textContent = 'down ' + limitText(doc.download_limit) + ', up ' + limitText(doc.upload_limit);
        refreshNode();
      }).catch(function (e) { msg.className = 'msg error'; msg.textContent = errText(e); });
    });
    $('btn-logout').addEventListener('click', function () {
      api('DELETE', '/api/v1/web/session').catch(function () { /* gone already */ }).then(function () {
        loggedOut = true;
        forgetCsrf();
        if (conn.es) { conn.es.close(); conn.es = null; }
        stopPolling();
        setConn('offline');
        swarms = new Map();
        view.dirty = true;
        location.hash = '#/logged-out';
      });
    });
  }

  /* ------------------------------------------------------------ routing */

  var VIEWS = ['swarms', 'swarm', 'add', 'node', 'logged-out'];
  function parseHash() {
    var h = location.hash.replace(/^#\/?/, '');
    var m = /^swarm\/(.+)$/.exec(h);
    if (m) return { name: 'swarm', id: decodeURIComponent(m[1]) };
    if (h === 'add' || h === 'node' || h === 'logged-out') return { name: h, id: null };
    return { name: 'swarms', id: null };
  }
  function onRoute() {
    var r = parseHash();
    if (loggedOut && r.name !== 'logged-out') r = { name: 'logged-out', id: null };
    var prev = route;
    route = r;
    VIEWS.forEach(function (v) {
      if (v === r.name) show('view-' + v); else hide('view-' + v);
    });
    ['swarms', 'add', 'node'].forEach(function (v) {
      $('nav-' + v).classList.toggle('active', r.name === v || (v === 'swarms' && r.name === 'swarm'));
    });
    if (prev.name === 'swarm' && (r.name !== 'swarm' || r.id !== prev.id)) closeDetail();
    if (prev.name === 'node' && r.name !== 'node') { clearInterval(nodeTimer); nodeTimer = null; }
    if (r.name !== 'swarm') document.title = 'shoal';
    if (r.name === 'swarm' && (prev.name !== 'swarm' || prev.id !== r.id || detail.id === null)) openDetail(r.id);
    if (r.name === 'node') openNode();
    if (r.name === 'logged-out') hide('notice-login');
    if (r.name === 'swarms') {
      var sid = Number(prev.id);
      if (prev.name === 'swarm' && swarms.has(sid)) selectedId = sid;
    }
    scheduleRender();
  }

  /* ------------------------------------------------------------ keyboard */

  function typing(t) {
    if (!t || !t.tagName) return false;
    var tag = t.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable;
  }
  function anyDialogOpen() {
    return $('remove-dialog').open || $('help-dialog').open;
  }
  function showHelp() {
    var d = $('help-dialog');
    if (d.open) return;
    if (typeof d.showModal === 'function') d.showModal(); else d.setAttribute('open', '');
  }
  function selectedSwarm() {
    if (route.name === 'swarm') return currentSwarm();
    return selectedId === null ? null : swarms.get(selectedId) || null;
  }
  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === 'Escape' && typing(ev.target)) { ev.target.blur(); return; }
    if (typing(ev.target) || anyDialogOpen()) return;
    var k = ev.key;
    var handled = true;
    if (k === '/') {
      if (route.name !== 'swarms') location.hash = '#/swarms';
      setTimeout(function () { $('search').focus(); $('search').select(); }, 0);
    } else if (k === '?') {
      showHelp();
    } else if (k === 'a') {
      location.hash = '#/add';
      setTimeout(function () { $('add-link').focus(); }, 0);
    } else if (k === 's') {
      location.hash = '#/swarms';
    } else if (k === 'n') {
      location.hash = '#/node';
    } else if (k === 'Escape') {
      if (route.name === 'swarm' || route.name === 'add' || route.name === 'node') location.hash = '#/swarms';
      else handled = false;
    } else if (k === 'p') {
      var s = selectedSwarm();
      if (s) {
        var kind = s.state === 'paused' ? 'resume' : 'pause';
        if (route.name === 'swarm') act(kind);
        else swarmAction(s, kind).catch(function (e) { flashError(nameOf(s) + ': ' + errText(e)); });
      }
    } else if (k === 'Delete' || k === 'Backspace') {
      askRemove(selectedSwarm());
    } else if (route.name === 'swarms' && (k === 'ArrowDown' || k === 'j')) {
      selectIndex(selectedIndex() + 1);
    } else if (route.name === 'swarms' && (k === 'ArrowUp' || k === 'k')) {
      var i = selectedIndex();
      selectIndex(i < 0 ? 0 : i - 1);
    } else if (route.name === 'swarms' && k === 'Home') {
      selectIndex(0);
    } else if (route.name === 'swarms' && k === 'End') {
      selectIndex(view.list.length - 1);
    } else if (route.name === 'swarms' && (k === 'PageDown' || k === 'PageUp')) {
      var page = Math.max(1, Math.floor($('swarm-scroll').clientHeight / ROW_H) - 1);
      selectIndex(Math.max(0, selectedIndex()) + (k === 'PageDown' ? page : -page));
    } else if (route.name === 'swarms' && k === 'Enter' && selectedId !== null) {
      location.hash = '#/swarm/' + selectedId;
    } else {
      handled = false;
    }
    if (handled) ev.preventDefault();
  }

  /* ------------------------------------------------------------ start */

  function start() {
    performance.mark('shoal-start');
    setupList();
    setupDetail();
    setupAdd();
    setupNode();
    $('btn-help').addEventListener('click', showHelp);
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', onRoute);
    onRoute();
    openStream();
    setInterval(sample, 1000);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
