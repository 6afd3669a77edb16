// SPDX-License-Identifier: MIT
// The page's client: the parley protocol over one WebSocket (hello/resume, tools, acks) and a DOM built with textContent only.
'use strict';

(() => {
  const CLIENT_VERSION = '0.1.0';
  const MAX_BODY_BYTES = 8192;
  const KEPT_MESSAGES = 2000;  // per room; older message elements are removed
  const WHO_EVERY_MS = 5000;
  const ROOMS_EVERY_MS = 15000;
  const AUTH_CODES = new Set(['AuthRequiredError', 'BadTokenError', 'TokenRevokedError']);
  const SESSION_LOST_CODES = new Set(['UnknownSessionError', 'ReplayBufferOverflowError', 'BadReconnectTokenError']);

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'), signOut: $('sign-out'), signin: $('signin'), signinForm: $('signin-form'), token: $('token'),
    signinError: $('signin-error'), app: $('app'), joinForm: $('join-form'), joinRoom: $('join-room'),
    joinNickname: $('join-nickname'), joinError: $('join-error'), tabs: $('tabs'), allRooms: $('all-rooms'),
    refreshRooms: $('refresh-rooms'), room: $('room'), roomTitle: $('room-title'), roomMe: $('room-me'),
    leave: $('leave'), missed: $('missed'), messages: $('messages'), members: $('members'), composer: $('composer'),
    body: $('body'), send: $('send'), bytes: $('bytes'), sendError: $('send-error'), noRoom: $('no-room'),
    joinVisibility: $('join-visibility'), knock: $('knock'), knockText: $('knock-text'), knockNote: $('knock-note'),
    knockSend: $('knock-send'), knockStatus: $('knock-status'), notice: $('notice'), noticeText: $('notice-text'),
    noticeClose: $('notice-close'), invite: $('invite'), inviteBox: $('invite-box'), inviteLink: $('invite-link'),
    inviteCopy: $('invite-copy'), inviteStatus: $('invite-status'), confirm: $('confirm'), confirmText: $('confirm-text'),
    confirmYes: $('confirm-yes'), confirmNo: $('confirm-no'), knocksBox: $('knocks-box'), knocks: $('knocks'),
    roomError: $('room-error'), dmTo: $('dm-to'), dmToText: $('dm-to-text'), dmCancel: $('dm-cancel'),
    watchNote: $('watch-note'),
  };
  // What a refused join or room action means, in words; the code is shown beside it.
  const ERROR_TEXT = {
    RoomExistsError: 'that room already exists; join it instead',
    RoomPrivateError: 'this room is private: you need an invite link, or knock and wait for an owner',
    InviteInvalidError: 'this invite is not valid (wrong, expired or used up); ask an owner for a new one',
    BannedError: 'you are banned from this room',
  };
  const ROLE_TEXT = { owner: 'an owner', member: 'a member', watcher: 'a watcher' };
  const encoder = new TextEncoder();

  // Everything the connection knows; a room entry lives from its join to its leave, across reconnects.
  const state = {
    ws: null,
    session: null,         // {sessionId, reconnectToken} once a hello.ok came
    open: false,           // hello.ok received on the current socket
    closing: false,        // we closed on purpose (sign-out, page hide): do not reconnect
    retries: 0,
    retryTimer: 0,
    nextId: 0,
    pending: new Map(),    // requestId → {resolve}
    rooms: new Map(),      // slug → room
    active: null,
    tokenRequired: false,
    signedIn: false,
    deepLink: null,
    unconfirmed: null,     // {room, body, clientMsgId} of a send whose answer a drop swallowed
    knock: null,           // {room, nickname, knockId?}: the private room we ask to enter
    confirmAction: null,   // what the confirm box's yes button does
  };

  // ---- small DOM helpers (text only; server data never goes through innerHTML) ----
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function kindBadge(kind) {
    return kind === 'person' || kind === 'agent' ? el('span', `kind ${kind}`, kind) : null;
  }
  function setStatus(text, down) {
    ui.status.textContent = text;
    ui.status.classList.toggle('down', !!down);
  }

  // ---- the socket ----
  function wsUrl() {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    state.closing = false;
    state.open = false;
    setStatus(state.session ? 'reconnecting…' : 'connecting…', !!state.session);
    const ws = new WebSocket(wsUrl());
    state.ws = ws;
    ws.onopen = () => {
      const hello = { _tag: 'hello', clientVersion: CLIENT_VERSION, clientKind: 'person', features: ['directMessages'] };
      if (state.session) {
        // Direct messages have seqs of their own per room, so they are acked and resumed apart from the room's.
        const lastAckedSeqByRoom = {};
        const lastAckedDirectSeqByRoom = {};
        for (const [slug, r] of state.rooms) {
          if (r.lastSeq > 0) lastAckedSeqByRoom[slug] = r.lastSeq;
          if (r.lastDirectSeq > 0) lastAckedDirectSeqByRoom[slug] = r.lastDirectSeq;
        }
        hello.resume = { ...state.session, lastAckedSeqByRoom, lastAckedDirectSeqByRoom };
      }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (frame && typeof frame === 'object') onFrame(ws, frame);
    };
    ws.onclose = (ev) => onClose(ws, ev);
  }

  function onClose(ws, ev) {
    if (ws !== state.ws) return;
    state.ws = null;
    state.open = false;
    for (const p of state.pending.values()) p.resolve({ _tag: 'tool.err', code: 'ConnectionLost', message: 'the connection was lost before an answer came' });
    state.pending.clear();
    if (state.closing) return;
    if (ev.code === 4000) return needSignIn('Your sign-in is no longer valid; please sign in again.');
    if (ev.code === 4009) {
      setStatus('this session continued in another window; reload to start a new one', true);
      return;
    }
    if (ev.code === 4004) {
      setStatus('this page does not match the server version; reload it', true);
      return;
    }
    // A blip: retry after a quarter second, then back off 0.5, 1, 2 ... 10 s, jittered so pages do not return in step.
    const delay = state.retries === 0 ? 250 : Math.min(10000, 500 * 2 ** Math.min(state.retries - 1, 5));
    state.retries++;
    setStatus(`connection lost; retrying in ${Math.round(delay / 100) / 10} s`, true);
    state.retryTimer = setTimeout(connect, delay * (0.75 + Math.random() / 2));
  }

  function send(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
  }

  // Sends a tool frame; resolves with its tool.ok or tool.err (or a local ConnectionLost).
  function call(tag, fields) {
    if (!state.open) return Promise.resolve({ _tag: 'tool.err', code: 'NotConnected', message: 'not connected; retrying' });
    const requestId = `w${++state.nextId}`;
    return new Promise((resolve) => {
      state.pending.set(requestId, { resolve });
      send({ _tag: tag, requestId, ...fields });
    });
  }

  function onFrame(ws, f) {
    if (ws !== state.ws) return;
    switch (f._tag) {
      case 'hello.ok': return onHelloOk(f);
      case 'hello.err': return onHelloErr(f);
      case 'tool.ok':
      case 'tool.err': {
        const p = state.pending.get(f.requestId);
        if (p) {
          state.pending.delete(f.requestId);
          p.resolve(f);
        }
        return;
      }
      case 'room.message': return onMessage(f);
      case 'room.event': return onRoomEvent(f);
      case 'system.error': return console.warn('parley system.error', f.code, f.message);
      default: return undefined;
    }
  }

  function onHelloOk(f) {
    const resumed = !!state.session && state.session.sessionId === f.sessionId;
    state.session = { sessionId: f.sessionId, reconnectToken: f.reconnectToken };
    state.open = true;
    state.retries = 0;
    setStatus('connected');
    if (!resumed && state.rooms.size) {
      // A new session: the old memberships are gone, so join again and say what may be missing.
      for (const [slug, r] of state.rooms) {
        r.missed = true;
        r.baseline = 0;
        r.lastDirectSeq = 0;  // a new membership starts a new direct stream
        rejoin(slug, r);
      }
      renderActive();
    }
    refreshRooms();
    refreshWho();
    if (state.deepLink) {
      const { room, nickname, invite } = state.deepLink;
      state.deepLink = null;
      join(room, nickname, invite);
    }
  }

  async function rejoin(slug, r) {
    const args = { room: slug, nickname: r.nickname };
    let a = await call('tool.join_room', args);
    if (a._tag === 'tool.err' && a.code === 'NicknameTakenError') a = await call('tool.join_room', { room: slug });
    if (a._tag === 'tool.ok') {
      r.nickname = a.result.nickname;
      if (a.result.role) r.role = a.result.role;
      renderActive();
    } else if (a.code !== 'ConnectionLost' && a.code !== 'NotConnected') {
      showError(ui.joinError, a, `could not rejoin ${slug}`);
    }
  }

  function onHelloErr(f) {
    if (AUTH_CODES.has(f.code)) {
      state.closing = true;
      state.session = null;
      if (state.ws) state.ws.close();
      needSignIn(f.code === 'AuthRequiredError' ? 'Please sign in.' : `${f.message || f.code}. Please sign in again.`);
      return;
    }
    if (SESSION_LOST_CODES.has(f.code)) {
      // The server closes right after; the next connect starts a new session and rejoins.
      state.session = null;
      for (const r of state.rooms.values()) r.missed = true;
      renderActive();
      state.retries = 0;
      return;
    }
    setStatus(`the server refused the connection: ${f.message || f.code}`, true);
  }

  // ---- rooms ----
  function newRoom(slug, nickname) {
    const list = el('ol', 'messages');
    list.setAttribute('aria-live', 'polite');
    return {
      slug, nickname, list, members: [], moreMembers: false, unread: 0, missed: false,
      role: 'member', visibility: 'public', knocks: new Map(), dmTo: null, inviteLink: '',
      lastSeq: 0,         // highest seq received from others (what a resume names as acked)
      lastDirectSeq: 0,   // highest seq of the direct stream (messages to us alone), counted apart
      baseline: 0,        // highest seq known in the room, own sends included, for gap detection
      ownSeqs: new Set(), // seqs of our own sends above baseline, which never come back to us
      gaps: [],
    };
  }

  // Joins (or, with a visibility, creates) a room; a private room without an invite offers to knock.
  async function join(room, nickname, invite, visibility) {
    ui.joinError.textContent = '';
    if (state.rooms.has(room)) return activate(room);
    const args = { room };
    if (nickname) args.nickname = nickname;
    if (invite) args.invite = invite;
    if (visibility) args.visibility = visibility;
    const a = await call(visibility ? 'tool.create_room' : 'tool.join_room', args);
    if (a._tag !== 'tool.ok') {
      ui.joinRoom.value = room;
      ui.joinNickname.value = nickname || '';
      showError(ui.joinError, a, `could not ${visibility ? 'create' : 'join'} ${room}`);
      if (a.code === 'RoomPrivateError') offerKnock(room, nickname);
      return;
    }
    entered(room, a.result);
  }

  function entered(room, result) {
    const r = state.rooms.get(room) || newRoom(room, result.nickname);
    r.nickname = result.nickname;
    if (result.role) r.role = result.role;
    if (result.visibility) r.visibility = result.visibility;
    state.rooms.set(room, r);
    if (state.knock && state.knock.room === room) hideKnock();
    if (ui.joinRoom.value === room) {
      ui.joinRoom.value = '';
      ui.joinNickname.value = '';
      ui.joinError.textContent = '';
    }
    activate(room);
    refreshRooms();
  }

  // ---- knocking on a private room ----
  function offerKnock(room, nickname) {
    state.knock = { room, nickname };
    ui.knock.hidden = false;
    ui.knockText.textContent = `${room} is private. Knock to ask its owners to let you in.`;
    ui.knockNote.value = '';
    ui.knockNote.disabled = false;
    ui.knockSend.hidden = false;
    ui.knockSend.disabled = false;
    ui.knockStatus.textContent = '';
  }
  function hideKnock() {
    state.knock = null;
    ui.knock.hidden = true;
  }
  async function knock() {
    const k = state.knock;
    if (!k) return;
    const args = { room: k.room };
    if (k.nickname) args.nickname = k.nickname;
    const note = ui.knockNote.value.trim();
    if (note) args.note = note;
    ui.knockSend.disabled = true;
    const a = await call('tool.knock', args);
    if (state.knock !== k) return;
    if (a._tag !== 'tool.ok') {
      ui.knockSend.disabled = false;
      showError(ui.knockStatus, a, 'could not knock');
      return;
    }
    k.knockId = a.result.knockId;
    ui.knockNote.disabled = true;
    ui.knockSend.hidden = true;
    ui.knockStatus.textContent = `Knocked on ${k.room}: waiting for an owner to answer…`;
  }
  // Denied or expired: said in the box, which offers to knock again.
  function knockEnded(text) {
    state.knock.knockId = undefined;
    ui.knockNote.disabled = false;
    ui.knockSend.hidden = false;
    ui.knockSend.disabled = false;
    ui.knockStatus.textContent = text;
  }

  // ---- room events: knocks and their answers, removals, roles (a resume delivers those held meanwhile) ----
  function onRoomEvent(f) {
    const r = state.rooms.get(f.room);
    const k = state.knock && state.knock.room === f.room ? state.knock : null;
    switch (f.kind) {
      case 'approved':
        if (k) hideKnock();
        if (!r && typeof f.nickname === 'string') entered(f.room, { nickname: f.nickname, role: 'member', visibility: 'private' });
        return;
      case 'denied':
        if (k) knockEnded(`An owner of ${f.room} turned down your knock.`);
        return;
      case 'expired':
        if (k) knockEnded(`Your knock on ${f.room} expired: no owner answered in time.`);
        return;
      case 'knock':
        if (!r || typeof f.knockId !== 'string') return;
        r.knocks.set(f.knockId, { nickname: String(f.nickname || ''), note: typeof f.note === 'string' ? f.note : '' });
        if (state.active === f.room) renderKnocks(r);
        else {
          r.unread++;
          renderTabs();
        }
        return;
      case 'kicked':
      case 'banned':
        if (!r) return;
        removeRoom(f.room);
        showNotice(f.kind === 'banned' ? `An owner banned you from ${f.room}; you cannot join it again.`
                                       : `An owner removed you from ${f.room}.`);
        return;
      case 'missed':
        if (!r) return;
        showNotice(`Some events in ${f.room} were missed while the connection was down; who is here has been refreshed.`);
        refreshWho();
        return;
      case 'role':
        if (!r || !ROLE_TEXT[f.role]) return;
        r.role = f.role;
        addNote(r, `You are now ${ROLE_TEXT[f.role]} of this room.`);
        if (state.active === f.room) renderActive();
        refreshWho();
        return;
      default:
        return undefined;
    }
  }

  function showNotice(text) {
    ui.noticeText.textContent = text;
    ui.notice.hidden = false;
  }

  function removeRoom(slug) {
    state.rooms.delete(slug);
    if (state.active === slug) state.active = state.rooms.keys().next().value || null;
    renderTabs();
    renderActive();
    refreshRooms();
  }

  async function leave(slug) {
    const r = state.rooms.get(slug);
    if (!r) return;
    const a = await call('tool.leave_room', { room: slug });
    if (a._tag === 'tool.err' && a.code !== 'NotInRoomError') return showError(ui.sendError, a, `could not leave ${slug}`);
    removeRoom(slug);
  }

  function activate(slug) {
    state.active = slug;
    const r = state.rooms.get(slug);
    if (r) r.unread = 0;
    ui.roomError.textContent = '';
    renderTabs();
    renderActive();
    refreshWho();
    ui.body.focus();
  }

  async function refreshRooms() {
    const a = await call('tool.list_rooms', {});
    if (a._tag !== 'tool.ok') return;
    ui.allRooms.replaceChildren();
    const all = [...(a.result.joined || []), ...(a.result.available || [])].sort((x, y) => (x.name < y.name ? -1 : 1));
    for (const room of all) {
      const b = el('button');
      b.type = 'button';
      b.append(el('span', 'name', room.name));
      if (room.visibility === 'private') b.append(el('span', 'count', 'private'));
      b.append(el('span', 'count', `${room.membersCount} here`));
      b.addEventListener('click', () => {
        if (state.rooms.has(room.name)) return activate(room.name);
        ui.joinRoom.value = room.name;
        ui.joinNickname.focus();
      });
      const li = el('li');
      li.append(b);
      ui.allRooms.append(li);
    }
    if (!all.length) ui.allRooms.append(el('li', 'empty', 'no rooms yet'));
    if (a.result.nextCursor) ui.allRooms.append(el('li', 'empty', 'more rooms exist than are listed'));
  }

  async function refreshWho() {
    const slug = state.active;
    if (!slug || !state.open || document.hidden) return;
    const a = await call('tool.who_is_here', { room: slug });
    const r = state.rooms.get(slug);
    if (!r || a._tag !== 'tool.ok') return;
    const res = a.result;
    const before = r.members.length;
    const was = JSON.stringify([r.members, r.moreMembers]);
    r.members = Array.isArray(res.members) ? res.members : (res.nicknames || []).map((nickname) => ({ nickname }));
    r.moreMembers = !!res.nextCursor;
    const mine = r.members.find((m) => m.nickname === r.nickname);
    if (mine && ROLE_TEXT[mine.role] && mine.role !== r.role) {
      r.role = mine.role;
      if (state.active === slug) renderActive();
    }
    // Redrawn only when it changed, so a focused Kick or Message button keeps its focus.
    if (state.active === slug && was !== JSON.stringify([r.members, r.moreMembers])) renderMembers(r);
    if (before && before !== r.members.length) refreshRooms();  // keep the room list's counts in step
  }

  // ---- messages ----
  function onMessage(m) {
    const r = state.rooms.get(m.room);
    if (!r || typeof m.seq !== 'number') return;
    if (typeof m.to === 'string') {
      // A direct message: its seq is of our own direct stream in this room, which says nothing about the room's seqs.
      if (m.seq <= r.lastDirectSeq) return send({ _tag: 'ack', room: m.room, seq: r.lastDirectSeq, direct: true });
      insertMessage(r, m, false);
      r.lastDirectSeq = m.seq;
      send({ _tag: 'ack', room: m.room, seq: m.seq, direct: true });
    } else {
      if (m.seq <= r.lastSeq) return send({ _tag: 'ack', room: m.room, seq: r.lastSeq });  // a replayed duplicate
      noteSeq(r, m.seq);
      insertMessage(r, m, false);
      r.lastSeq = m.seq;
      send({ _tag: 'ack', room: m.room, seq: m.seq });
    }
    if (state.active !== m.room || document.hidden) {
      r.unread++;
      renderTabs();
    }
  }

  // Seqs of a room, counting our own sends, are consecutive while one session lasts; a hole that our own
  // sends in flight do not fill within a few seconds means messages were lost.
  function noteSeq(r, seq) {
    if (r.baseline > 0 && seq > r.baseline + 1) {
      for (let s = r.baseline + 1; s < seq; s++) if (!r.ownSeqs.has(s)) r.gaps.push(s);
      if (r.gaps.length) setTimeout(() => checkGaps(r), 3000);
    }
    if (seq > r.baseline) r.baseline = seq;
    for (const s of r.ownSeqs) if (s <= r.baseline) r.ownSeqs.delete(s);
  }
  function noteOwnSeq(r, seq) {
    r.gaps = r.gaps.filter((s) => s !== seq);
    if (seq > r.baseline) {
      if (r.baseline > 0) r.ownSeqs.add(seq);
      else r.baseline = seq;
    }
  }
  function checkGaps(r) {
    if (!r.gaps.length) return;
    r.gaps = [];
    r.missed = true;
    if (state.active === r.slug) renderActive();
  }

  function insertMessage(r, m, mine) {
    const direct = typeof m.to === 'string';
    const li = el('li', `msg${mine ? ' mine' : ''}${direct ? ' direct' : ''}`);
    li.dataset.seq = String(m.seq);
    const head = el('div', 'head');
    head.append(el('span', 'from', m.fromNickname));
    const badge = kindBadge(m.fromKind);
    if (badge) head.append(badge);
    if (direct) head.append(el('span', 'dm', mine ? `direct, to ${m.to}` : 'direct, to you'));
    const t = el('time', '', formatTime(m.sentAt));
    if (typeof m.sentAt === 'string') t.dateTime = m.sentAt;
    head.append(t);
    li.append(head, el('p', 'body', m.body));
    place(r, li, direct ? r.baseline + 0.5 : m.seq, mine);
  }

  // A line of the room's own (a role change), shown among the messages where it happened.
  function addNote(r, text) {
    place(r, el('li', 'note', text), r.baseline + 0.5, false);
  }

  // Room messages are ordered by seq; direct messages and notes, which have no room seq, go after the
  // latest room seq known when they came (in arrival order among themselves).
  function place(r, li, order, mine) {
    li.dataset.order = String(order);
    // Usually the newest; our own message may be confirmed after a later one arrived.
    let after = r.list.lastElementChild;
    while (after && Number(after.dataset.order) > order) after = after.previousElementSibling;
    const stick = r.list === ui.messages && nearBottom();
    if (after) after.after(li);
    else r.list.prepend(li);
    while (r.list.childElementCount > KEPT_MESSAGES) r.list.firstElementChild.remove();
    if (stick || mine) scrollToEnd();
  }

  function formatTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  function logBox() { return ui.messages.parentElement; }
  function nearBottom() {
    const b = logBox();
    return b.scrollHeight - b.scrollTop - b.clientHeight < 80;
  }
  function scrollToEnd() {
    const b = logBox();
    b.scrollTop = b.scrollHeight;
  }

  async function sendBody() {
    const r = state.rooms.get(state.active);
    const body = ui.body.value;
    if (!r || !body || bytesOf(body) > MAX_BODY_BYTES) return;
    ui.sendError.textContent = '';
    ui.body.value = '';
    updateBytes();
    // Sending again what a lost connection left unconfirmed reuses its key, so a resumed session cannot post it twice.
    const lost = state.unconfirmed;
    const clientMsgId = lost && lost.room === r.slug && lost.body === body
      ? lost.clientMsgId : `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    state.unconfirmed = null;
    const args = { room: r.slug, body, clientMsgId };
    const to = r.dmTo;
    if (to) args.to = to;
    const a = await call('tool.send_message', args);
    if (a._tag !== 'tool.ok') {
      if (a.code === 'ConnectionLost') state.unconfirmed = { room: r.slug, body, clientMsgId };
      if (!ui.body.value && state.active === r.slug) {
        ui.body.value = body;
        updateBytes();
      }
      showError(ui.sendError, a, 'not sent');
      return;
    }
    // A direct message's seq is the recipient's, not the room's: it fills no hole in the room's seqs.
    if (!to) noteOwnSeq(r, a.result.seq);
    const m = { seq: a.result.seq, fromNickname: r.nickname, fromKind: 'person', body, sentAt: a.result.sentAt };
    if (to) m.to = to;
    insertMessage(r, m, true);
  }

  function bytesOf(s) { return encoder.encode(s).length; }
  function updateBytes() {
    const left = MAX_BODY_BYTES - bytesOf(ui.body.value);
    ui.bytes.textContent = left >= 0 ? `${left} of ${MAX_BODY_BYTES} bytes left` : `${-left} byte${left === -1 ? '' : 's'} over the ${MAX_BODY_BYTES}-byte limit`;
    ui.bytes.classList.toggle('low', left >= 0 && left < 512);
    ui.bytes.classList.toggle('over', left < 0);
    const r = state.rooms.get(state.active);
    ui.send.disabled = left < 0 || (!!r && r.role === 'watcher');
  }

  function showError(target, a, what) {
    let text = `${what}: ${ERROR_TEXT[a.code] || a.message || a.code}`;
    if (a.code && a.code !== 'NotConnected' && a.code !== 'ConnectionLost') text += ` (${a.code})`;
    if (a.details && typeof a.details.retryAfterMs === 'number') text += `; try again in ${Math.ceil(a.details.retryAfterMs / 100) / 10} s`;
    target.textContent = text;
  }

  // ---- rendering ----
  function renderTabs() {
    ui.tabs.replaceChildren();
    for (const [slug, r] of state.rooms) {
      const b = el('button');
      b.type = 'button';
      b.append(el('span', 'name', slug));
      if (r.unread) b.append(el('span', 'unread', String(r.unread)));
      b.setAttribute('aria-current', String(slug === state.active));
      b.setAttribute('aria-label', r.unread ? `${slug}, ${r.unread} unread` : slug);
      b.addEventListener('click', () => activate(slug));
      const li = el('li');
      li.append(b);
      ui.tabs.append(li);
    }
    if (!state.rooms.size) ui.tabs.append(el('li', 'empty', 'none yet'));
    const unread = [...state.rooms.values()].reduce((n, r) => n + r.unread, 0);
    document.title = unread ? `(${unread}) parley` : 'parley';
  }

  function renderActive() {
    const r = state.rooms.get(state.active);
    ui.room.hidden = !r;
    ui.noRoom.hidden = !!r;
    if (!r) return;
    ui.roomTitle.textContent = r.slug;
    ui.roomMe.textContent = `you are ${r.nickname}`;
    ui.roomMe.title = `${ROLE_TEXT[r.role] || 'a member'} of this ${r.visibility} room`;
    ui.missed.hidden = !r.missed;
    const owner = r.role === 'owner';
    ui.invite.hidden = !owner;
    ui.inviteBox.hidden = !owner || !r.inviteLink;
    if (ui.inviteLink.value !== r.inviteLink) {
      ui.inviteLink.value = r.inviteLink;
      ui.inviteStatus.textContent = '';
    }
    if (state.confirmAction && state.confirmAction.room !== r.slug) hideConfirm();
    const watcher = r.role === 'watcher';
    ui.watchNote.hidden = !watcher;
    ui.body.disabled = watcher;
    if (r.dmTo && !r.members.some((m) => m.nickname === r.dmTo) && r.members.length) r.dmTo = null;
    ui.dmTo.hidden = !r.dmTo;
    ui.dmToText.textContent = r.dmTo ? `Direct message to ${r.dmTo} only (no one else sees it)` : '';
    ui.body.placeholder = watcher ? 'Watchers cannot send here'
      : r.dmTo ? `Write to ${r.dmTo} only (Enter sends)` : 'Write a message (Enter sends, Shift+Enter for a new line)';
    updateBytes();
    renderKnocks(r);
    if (ui.messages !== r.list) {
      ui.messages.removeAttribute('id');
      r.list.id = 'messages';
      ui.messages.replaceWith(r.list);
      ui.messages = r.list;
      scrollToEnd();
    }
    renderMembers(r);
  }

  function renderMembers(r) {
    const focused = ui.members.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    ui.members.replaceChildren();
    const owner = r.role === 'owner';
    for (const m of r.members) {
      const li = el('li', 'member', m.nickname);
      const badge = kindBadge(m.kind);
      if (badge) li.append(badge);
      if (ROLE_TEXT[m.role]) li.append(el('span', `role role-${m.role}`, m.role));
      if (m.nickname !== r.nickname) {
        const actions = el('span', 'actions');
        actions.append(memberButton('Message', m.nickname, () => startDirect(r, m.nickname)));
        if (owner) {
          actions.append(memberButton('Kick', m.nickname, () => askConfirm(r, 'kick', m.nickname)));
          actions.append(memberButton('Ban', m.nickname, () => askConfirm(r, 'ban', m.nickname)));
        }
        li.append(actions);
      }
      ui.members.append(li);
    }
    if (r.moreMembers) ui.members.append(el('li', 'empty', 'and more'));
    if (focused) {
      const again = [...ui.members.querySelectorAll('button')].find((b) => b.dataset.key === focused);
      if (again) again.focus();
    }
  }
  function memberButton(verb, nickname, onClick) {
    const b = el('button', `act ${verb.toLowerCase()}`, verb);
    b.type = 'button';
    b.setAttribute('aria-label', `${verb} ${nickname}`);
    b.dataset.key = `${verb} ${nickname}`;
    b.addEventListener('click', onClick);
    return b;
  }

  function renderKnocks(r) {
    ui.knocks.replaceChildren();
    ui.knocksBox.hidden = r.role !== 'owner' || !r.knocks.size;
    for (const [knockId, k] of r.knocks) {
      const li = el('li', 'knock-item');
      const who = el('p', 'knock-who');
      who.append(el('span', 'from', k.nickname), ' asks to join');
      li.append(who);
      if (k.note) li.append(el('p', 'body', k.note));
      li.append(knockButton(r, knockId, k, 'Approve'), knockButton(r, knockId, k, 'Deny'));
      ui.knocks.append(li);
    }
  }
  function knockButton(r, knockId, k, verb) {
    const b = el('button', '', verb);
    b.type = 'button';
    b.setAttribute('aria-label', `${verb} ${k.nickname}`);
    b.addEventListener('click', async () => {
      b.disabled = true;
      const a = await call(verb === 'Approve' ? 'tool.approve' : 'tool.deny', { room: r.slug, knockId });
      ui.roomError.textContent = '';
      // Answered (by us or, NotFoundError, by another owner or the clock): either way it is no longer waiting.
      if (a._tag === 'tool.ok' || a.code === 'NotFoundError') r.knocks.delete(knockId);
      if (a._tag !== 'tool.ok') showError(ui.roomError, a, `could not ${verb.toLowerCase()} ${k.nickname}`);
      if (state.active === r.slug) renderKnocks(r);
      refreshWho();
    });
    return b;
  }

  // ---- owners: invites, kick and ban ----
  async function makeInvite() {
    const r = state.rooms.get(state.active);
    if (!r) return;
    ui.roomError.textContent = '';
    const a = await call('tool.invite', { room: r.slug });
    if (a._tag !== 'tool.ok') return showError(ui.roomError, a, 'no invite made');
    const q = new URLSearchParams({ room: r.slug, invite: a.result.code });
    r.inviteLink = `${location.origin}/?${q}`;
    if (state.active !== r.slug) return;
    renderActive();
    await copyInvite();
  }
  async function copyInvite() {
    ui.inviteLink.focus();
    ui.inviteLink.select();
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(ui.inviteLink.value);
      ui.inviteStatus.textContent = 'Copied to the clipboard.';
    } catch {
      ui.inviteStatus.textContent = 'Selected: copy it with Ctrl+C (or ⌘C).';
    }
  }

  function askConfirm(r, verb, nickname) {
    state.confirmAction = { room: r.slug, verb, nickname };
    ui.confirmText.textContent = verb === 'ban'
      ? `Ban ${nickname} from ${r.slug}? They are removed and cannot join again.`
      : `Remove ${nickname} from ${r.slug}? They can join again.`;
    ui.confirmYes.textContent = `Yes, ${verb} ${nickname}`;
    ui.confirm.hidden = false;
    ui.confirmYes.focus();
  }
  function hideConfirm() {
    const focused = ui.confirm.contains(document.activeElement);
    state.confirmAction = null;
    ui.confirm.hidden = true;
    if (focused) (ui.body.disabled ? ui.leave : ui.body).focus();
  }
  async function confirmed() {
    const c = state.confirmAction;
    hideConfirm();
    if (!c) return;
    ui.roomError.textContent = '';
    const a = await call(`tool.${c.verb}`, { room: c.room, nickname: c.nickname });
    if (a._tag !== 'tool.ok') showError(ui.roomError, a, `could not ${c.verb} ${c.nickname}`);
    refreshWho();
  }

  function startDirect(r, nickname) {
    r.dmTo = nickname;
    renderActive();
    ui.body.focus();
  }
  function stopDirect() {
    const r = state.rooms.get(state.active);
    if (r) r.dmTo = null;
    renderActive();
    ui.body.focus();
  }

  // ---- sign-in ----
  function needSignIn(message) {
    state.signedIn = false;
    ui.app.hidden = true;
    ui.signOut.hidden = true;
    ui.signin.hidden = false;
    ui.signinError.textContent = message || '';
    setStatus('signed out', true);
    ui.token.focus();
  }

  function showApp() {
    ui.signin.hidden = true;
    ui.app.hidden = false;
    ui.signOut.hidden = !(state.tokenRequired && state.signedIn);
    renderTabs();
    renderActive();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const token = ui.token.value.trim();
    ui.token.value = '';  // the token lives only in this function and the request; never stored
    ui.signinError.textContent = '';
    if (!token) return;
    let res;
    try {
      res = await fetch('/session', { method: 'POST', credentials: 'same-origin', cache: 'no-store', headers: { Authorization: `Bearer ${token}` } });
    } catch {
      ui.signinError.textContent = 'The server cannot be reached; try again.';
      return;
    }
    if (res.status !== 204 && res.status !== 200) {
      let message = `sign-in refused (HTTP ${res.status})`;
      try {
        const j = await res.json();
        if (j && j.message) message = `${j.message}${j.code ? ` (${j.code})` : ''}`;
      } catch { /* the status says enough */ }
      ui.signinError.textContent = message;
      ui.token.focus();
      return;
    }
    state.signedIn = true;
    showApp();
    connect();
  }

  async function signOut() {
    state.closing = true;
    clearTimeout(state.retryTimer);
    if (state.ws) state.ws.close(1000);
    state.ws = null;
    state.session = null;
    state.rooms.clear();
    state.active = null;
    try {
      await fetch('/session', { method: 'DELETE', credentials: 'same-origin', cache: 'no-store' });
    } catch { /* the cookie expires anyway; the form is what matters */ }
    renderTabs();
    renderActive();
    needSignIn('');
  }

  // ---- start ----
  function readDeepLink() {
    const q = new URLSearchParams(location.search);
    const room = q.get('room');
    if (!room || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(room)) return null;
    const link = { room };
    const nickname = q.get('nickname');
    if (nickname) link.nickname = nickname;
    const invite = q.get('invite');
    if (invite) link.invite = invite;
    return link;
  }

  async function start() {
    state.deepLink = readDeepLink();
    try {
      const res = await fetch('/session', { credentials: 'same-origin', cache: 'no-store' });
      if (res.ok) {
        const s = await res.json();
        state.tokenRequired = !!s.tokenRequired;
        state.signedIn = !!s.signedIn;
      }
    } catch { /* no auth endpoint: behave as on loopback, and let hello.err say otherwise */ }
    if (state.tokenRequired && !state.signedIn) return needSignIn('');
    showApp();
    connect();
  }

  ui.signinForm.addEventListener('submit', signIn);
  ui.signOut.addEventListener('click', signOut);
  ui.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = ui.joinRoom.value.trim();
    const nickname = ui.joinNickname.value.trim();
    if (!room) return;
    const create = ev.submitter && ev.submitter.value === 'create';
    join(room, nickname || undefined, undefined, create ? ui.joinVisibility.value : undefined).then(() => {
      if (state.rooms.has(room)) {
        ui.joinRoom.value = '';
        ui.joinNickname.value = '';
      }
    });
  });
  ui.refreshRooms.addEventListener('click', refreshRooms);
  ui.knockSend.addEventListener('click', knock);
  ui.noticeClose.addEventListener('click', () => {
    ui.notice.hidden = true;
    ui.joinRoom.focus();
  });
  ui.invite.addEventListener('click', makeInvite);
  ui.inviteCopy.addEventListener('click', copyInvite);
  ui.confirmYes.addEventListener('click', confirmed);
  ui.confirmNo.addEventListener('click', hideConfirm);
  ui.confirm.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') hideConfirm();
  });
  ui.dmCancel.addEventListener('click', stopDirect);
  ui.leave.addEventListener('click', () => leave(state.active));
  ui.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendBody();
  });
  ui.body.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendBody();
    }
  });
  ui.body.addEventListener('input', updateBytes);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    const r = state.rooms.get(state.active);
    if (r && r.unread) {
      r.unread = 0;
      renderTabs();
    }
    refreshWho();
  });
  // Closing the page ends the session at once (1000), so its nicknames are free for the next visit.
  window.addEventListener('pagehide', () => {
    state.closing = true;
    if (state.ws) state.ws.close(1000);
  });
  setInterval(refreshWho, WHO_EVERY_MS);
  setInterval(refreshRooms, ROOMS_EVERY_MS);
  updateBytes();
  start();
})();
