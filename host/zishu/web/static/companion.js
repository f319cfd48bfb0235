// The companion panel: open a session for the chosen character, stream its events (reply text,
// emotions to the avatar, speech to the speakers, latency), send typed messages and the microphone,
// cut the reply off when the user speaks, and keep the memory panel in step.
import { $, api, confirmDialog, el, idPath, installButton, reportError, toast, undoToast } from "./app.js";
import { mountAvatar, mouthLevel } from "./avatar.js";
import { Microphone, Playback } from "./voice.js";

const root = $("companion");
const character = root.dataset.character;
const STAGES = [
  ["endpoint", "End of turn heard"], ["transcript", "Transcript"], ["first_token", "First token"], ["first_sentence", "First sentence"],
  ["first_audio", "First audio"], ["playback", "Playback starts"], ["generated", "Reply generated"],
];
const TAG = /\[[^\][\n]{1,32}\]|【[^】\n]{1,32}】|（[^）\n]{1,32}）/g; // emotion tags, hidden from the text

let session = null;
let avatar = null;
let reply = null; // {node, raw} of the reply being streamed
const playback = new Playback({
  onStart: () => post("playback", { event: "playing" }),
  onHeard: (n) => post("playback", { event: "heard", sentences: n }),
});
const microphone = new Microphone((buffer) => sendAudio(buffer));

function post(what, body) {
  if (!session) return Promise.resolve();
  return api(`/api/companion/sessions/${session.id}/${what}`, { method: "POST", body }).catch(reportError);
}

async function sendAudio(buffer) {
  if (!session) return;
  await fetch(`/api/companion/sessions/${session.id}/audio`, {
    method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: buffer,
  }).catch(() => {});
}

function status(text) {
  $("companion-status").textContent = text;
}

function message(role, text) {
  const node = el("li", { class: `message ${role}`, "data-testid": `message-${role}` }, text);
  $("messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

// -- chats: each stored message with its actions ------------------------------------------------------
// The actions' labels come from CSS (data-icon), so a message's text content stays what was said.

const messagePath = (id, rest = "") => `/api/companion/sessions/${session.id}/messages/${id}${rest}`;

function showText(node, text) {
  let span = node.querySelector(".message-text");
  if (!span) {
    span = el("span", { class: "message-text" });
    node.replaceChildren(span);
  }
  span.textContent = text || "(no words)";
  node.classList.toggle("no-words", !text);
}

function stored(node, m) {
  // node shows stored message m ({id, role, text, swipes, swipe}), with its actions
  node.dataset.id = m.id;
  showText(node, m.text);
  const act = (name, label, icon, handler) => {
    const button = el("button", { type: "button", class: "ghost icon", "data-testid": name, "aria-label": label,
      title: label, dataset: { icon } });
    button.addEventListener("click", () => handler().catch(reportError));
    return button;
  };
  const actions = el("span", { class: "message-actions" });
  if (m.role === "assistant") {
    const count = m.swipes.length;
    const left = act("swipe-left", "Previous alternative", "←", () => swipeTo(node, m, m.swipe - 1));
    const right = act("swipe-right", "Next alternative", "→", () => swipeTo(node, m, m.swipe + 1));
    left.disabled = m.swipe <= 0;
    right.disabled = m.swipe >= count - 1;
    const at = el("span", { class: "swipe-count muted small", "data-testid": "swipe-count",
      dataset: { count: `${m.swipe + 1}/${count}` } });
    actions.append(left, at, right, act("regenerate", "Regenerate", "↻", () => regenerate(node, m)));
  }
  actions.append(act("edit-message", "Edit", "✎", () => editMessage(node, m)),
    act("delete-message", "Delete", "✕", () => deleteMessage(node, m)));
  node.querySelector(".message-actions")?.remove();
  node.append(actions);
}

async function swipeTo(node, m, to) {
  const { message: changed } = await api(messagePath(m.id, "/swipe"), { method: "POST", body: { to } });
  stored(node, changed);
}

async function regenerate(node) {
  if (playback.playing) playback.stop(); // silence it, but keep the alternative whole: this is no barge-in
  node.classList.add("streaming");
  await api(messagePath(node.dataset.id, "/regenerate"), { method: "POST" });
}

async function editMessage(node, m) {
  const input = el("textarea", { class: "message-input", "data-testid": "message-input", rows: 2 });
  input.value = m.text;
  node.querySelector(".message-text").replaceWith(input);
  input.focus();
  input.addEventListener("keydown", async (e) => {
    if (e.key === "Escape") stored(node, m);
    if (e.key !== "Enter" || e.shiftKey) return;
    e.preventDefault();
    try {
      const { message: changed, before } = await api(messagePath(m.id), { method: "PUT", body: { text: input.value } });
      input.remove();
      stored(node, changed);
      loadMemories();
      undoToast("Message edited.", async () => {
        const { message: back } = await api(messagePath(m.id), { method: "PUT", body: { text: before } });
        stored(node, back);
        loadMemories();
      });
    } catch (error) {
      reportError(error);
    }
  });
}

async function deleteMessage(node, m) {
  await api(messagePath(m.id), { method: "DELETE" });
  node.hidden = true;
  loadMemories();
  undoToast("Message deleted.", async () => {
    await api(messagePath(m.id, "/restore"), { method: "POST" });
    node.hidden = false;
    loadMemories();
  });
}

async function loadChats(current) {
  const { chats } = await api(`/api/companion/characters/${idPath(character)}/chats`);
  const when = (t) => new Date(t * 1000).toLocaleString();
  $("chat-select").replaceChildren(...chats.map((c) => el("option", { value: c.id, selected: c.id === current },
    `${c.title} · ${when(c.updated)} · ${c.messages} messages`)));
  $("export-chat").href = `/api/companion/chats/${current}/export`;
}

function openChat(id) {
  const params = new URLSearchParams(location.search);
  params.set("character", character);
  params.set("chat", id);
  location.search = params.toString();
}

$("continue-chat").addEventListener("click", () => openChat($("chat-select").value));
$("new-chat").addEventListener("click", async () => {
  try {
    const { chat } = await api(`/api/companion/characters/${idPath(character)}/chats`, { method: "POST" });
    openChat(chat.id);
  } catch (error) {
    reportError(error);
  }
});
$("import-chat").addEventListener("change", async () => {
  const file = $("import-chat").files[0];
  if (!file) return;
  try {
    const form = new FormData();
    form.append("file", file);
    const { chat } = await api(`/api/companion/characters/${idPath(character)}/chats/import`, { method: "POST", body: form });
    openChat(chat.id);
  } catch (error) {
    reportError(error);
  }
});

function bargeIn() {
  if (playback.playing) post("playback", { event: "barge_in", sentences: playback.stop() });
}

// -- the session's events ----------------------------------------------------------------------------

const handlers = {
  turn(event) {
    playback.reset();
    const again = event.regenerating && $("messages").querySelector(`[data-id="${event.regenerating}"]`);
    reply = { node: again || message("assistant", ""), raw: "" };
    if (again) showText(again, "");
    reply.node.classList.add("streaming");
    showInjected(event.memories, event.lore);
  },
  token(event) {
    if (!reply) return;
    reply.raw += event.text;
    const text = reply.raw.replace(TAG, "").trimStart();
    if (reply.node.querySelector(".message-text")) reply.node.querySelector(".message-text").textContent = text;
    else reply.node.textContent = text;
  },
  emotion(event) {
    if (!avatar) return;
    avatar.express(event.expression || event.name, event.name);
    if (event.motion) avatar.motion(event.motion);
  },
  audio(event) {
    playback.push(event.pcm, event.sample_rate, event.index);
  },
  done(event) {
    if (!reply) return;
    reply.node.classList.remove("streaming");
    if (event.interrupted) reply.node.classList.add("interrupted");
    showText(reply.node, event.text); // "(no words)": a reply of only a tag, or cut before a word
    if (event.turn) {
      stored(reply.node, { id: event.turn, role: "assistant", text: event.text,
        swipes: event.swipes || [event.text], swipe: event.swipes ? event.swipe : 0 });
      const asked = [...$("messages").querySelectorAll('[data-testid="message-user"]:not([data-id])')].pop();
      if (asked && event.user_turn) stored(asked, { id: event.user_turn, role: "user", text: asked.textContent });
      loadChats(session.chat).catch(() => {});
    }
    reply = null;
    loadMemories();
  },
  transcript(event) {
    if (event.text) message("user", event.text);
  },
  speech_start() {
    bargeIn();
  },
  latency(event) {
    showLatency(event.latency, event.summary);
  },
  error(event) {
    if (reply) reply.node.classList.remove("streaming");
    reply = null;
    toast(event.message, "error");
  },
};

// Waits before each new try at the session's event stream. A refused stream (every slot taken by
// pages just left: the server frees those within seconds) is tried again; a session that ended with
// its stream (the app stopped) is refused each time, and after the last try the page says so.
const RECONNECT_MS = [1000, 2000, 4000, 8000, 15000];

function listen(attempt = 0) {
  const stream = new EventSource(`/api/companion/sessions/${session.id}/events`);
  for (const [type, handle] of Object.entries(handlers)) {
    // the server's "error" events carry data; the stream's own (a lost connection) has none
    stream.addEventListener(type, (e) => typeof e.data === "string" && handle(JSON.parse(e.data)));
  }
  stream.onopen = () => {
    if (attempt) status(presence());
    attempt = 0;
  };
  stream.onerror = () => {
    stream.close();
    if (attempt >= RECONNECT_MS.length) {
      status("Connection to Zishu lost; reload to talk again.");
      return;
    }
    status("Reconnecting to Zishu…");
    setTimeout(() => listen(attempt + 1), RECONNECT_MS[attempt]);
  };
}

function presence() {
  const notes = session.notes.length ? ` (${session.notes.join("; ")})` : "";
  return `${session.character.name} is here${notes}.`;
}

// -- latency and memory --------------------------------------------------------------------------------

function showLatency(latency, summary) {
  const rows = STAGES.filter(([stage]) => stage in latency || stage in summary).map(([stage, label]) => {
    const s = summary[stage] || {};
    const ms = (v) => (v === undefined ? "—" : Math.round(v).toString());
    return el("tr", { dataset: { stage } }, el("td", {}, label), el("td", {}, ms(latency[stage])),
      el("td", {}, ms(s.p50)), el("td", {}, ms(s.p95)));
  });
  $("latency-table").replaceChildren(...rows);
}

function showInjected(memories, lore) {
  const items = memories.map((m) => el("li", { "data-testid": "injected-memory", dataset: { id: m.id } },
    m.text, el("span", { class: "muted small" }, m.pinned ? " · pinned" : ` · ${m.score.toFixed(2)}`)));
  for (const name of lore) items.push(el("li", { "data-testid": "injected-lore" }, `Lorebook: ${name}`));
  if (!items.length) items.push(el("li", { class: "muted" }, "No memories or lorebook entries this turn."));
  $("injected").replaceChildren(...items);
}

const memoryPath = (rest = "") => `/api/companion/sessions/${session.id}/memories${rest}`;

async function loadMemories() {
  if (!session || !session.memory) return;
  try {
    const { memories } = await api(memoryPath());
    const rows = memories.map(memoryRow);
    if (!rows.length) rows.push(el("li", { class: "muted" }, "Nothing remembered yet."));
    $("memories").replaceChildren(...rows);
  } catch (error) {
    reportError(error);
  }
}

function memoryRow(memory) {
  const text = el("span", { class: "memory-text" }, memory.text);
  const pin = el("button", { type: "button", class: "ghost", "data-testid": "pin-memory", "aria-pressed": String(memory.pinned) },
    memory.pinned ? "Unpin" : "Pin");
  const edit = el("button", { type: "button", class: "ghost", "data-testid": "edit-memory" }, "Edit");
  const forget = el("button", { type: "button", class: "ghost", "data-testid": "forget-memory" }, "Forget");
  const row = el("li", { "data-testid": "memory", dataset: { id: memory.id }, class: memory.pinned ? "pinned" : "" },
    text, el("span", { class: "actions" }, pin, edit, forget));
  pin.addEventListener("click", () => change(memory.id, { pinned: !memory.pinned }));
  forget.addEventListener("click", async () => {
    await api(memoryPath(`/${memory.id}/forget`), { method: "POST" }).catch(reportError);
    loadMemories();
    undoToast("Forgotten.", async () => {
      await api(memoryPath(`/${memory.id}/restore`), { method: "POST" });
      loadMemories();
    });
  });
  edit.addEventListener("click", () => {
    const input = el("input", { type: "text", value: memory.text, "data-testid": "memory-input" });
    text.replaceWith(input);
    input.focus();
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") change(memory.id, { text: input.value });
      if (e.key === "Escape") loadMemories();
    });
  });
  return row;
}

async function change(id, body) {
  await api(memoryPath(`/${id}`), { method: "PUT", body }).catch(reportError);
  loadMemories();
}

$("delete-memories").addEventListener("click", async () => {
  const sure = await confirmDialog({ title: "Delete all memories?",
    text: "Every turn and memory of this character goes. You can undo it right after.", ok: "Delete all" });
  if (!sure) return;
  try {
    const { deleted } = await api(memoryPath("/delete-all"), { method: "POST" });
    $("messages").replaceChildren();
    loadMemories();
    undoToast(`Deleted ${deleted.memories} memories and ${deleted.turns} messages.`, async () => {
      await api(memoryPath("/undo-delete"), { method: "POST" });
      loadMemories();
    });
  } catch (error) {
    reportError(error);
  }
});

// -- typing and talking ----------------------------------------------------------------------------------

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message");
  const text = input.value.trim();
  if (!text || !session) return;
  playback.ensureContext(); // a click: the browser now lets the page play sound
  bargeIn();
  message("user", text);
  input.value = "";
  post("say", { text });
});

$("mic").addEventListener("click", async () => {
  const button = $("mic");
  try {
    if (microphone.on) {
      await microphone.stop();
      await fetch(`/api/companion/sessions/${session.id}/audio?end=1`, {
        method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: new ArrayBuffer(0) });
    } else {
      playback.ensureContext();
      await microphone.start();
    }
  } catch (error) {
    reportError(error);
  }
  button.setAttribute("aria-pressed", String(microphone.on));
  button.textContent = microphone.on ? "Stop talking" : "Talk";
});

const select = $("character-select");
if (select) select.addEventListener("change", () => { location.search = `?character=${encodeURIComponent(select.value)}`; });

function animateMouth() {
  if (avatar && playback.analyser) avatar.mouth(playback.playing ? mouthLevel(playback.analyser) : 0);
  requestAnimationFrame(animateMouth);
}

/** An Install button for the catalog id the server's error names as the cure (``error.install``). */
function offerInstall(rid) {
  if (!rid) return;
  $("companion-status").after(installButton(rid, "install-missing", () => {
    status(`${$("companion-status").textContent} Installing ${rid}: reload to talk when it is done.`);
  }));
}

async function start() {
  try {
    const info = await api(`/api/avatar/${idPath(character)}`);
    avatar = await mountAvatar($("avatar"), info);
  } catch (error) {
    reportError(error);
  }
  try {
    const chat = Number(new URLSearchParams(location.search).get("chat")) || undefined;
    session = await api("/api/companion/sessions", { method: "POST", body: { character, chat } });
  } catch (error) {
    status(`${character} cannot talk: ${error.message}`);
    offerInstall(error.install);
    return;
  }
  listen();
  $("message").disabled = false;
  $("send").disabled = false;
  $("mic").disabled = !session.hearing;
  $("mic").title = session.hearing ? "" : "No speech recognition model is installed";
  $("export-memories").href = memoryPath("/export");
  status(presence());
  root.dataset.session = session.id;
  const mood = session.character.greeting_emotion;
  if (session.character.greeting || mood) {
    const node = message("assistant", session.character.greeting || "");
    if (mood) {
      node.prepend(el("span", { class: "emotion-chip", "data-testid": "greeting-emotion", dataset: { emotion: mood.name },
        title: mood.name }, mood.tag), " ");
      if (avatar) avatar.express(mood.expression || mood.name, mood.name);
    }
  }
  for (const m of session.messages) stored(message(m.role, m.text), m); // continuing: its history
  if (session.chat) loadChats(session.chat).catch(reportError);
  loadMemories();
  requestAnimationFrame(animateMouth);
}

start();
