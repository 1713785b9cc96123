// The chat page: a thread, a composer, and the conversation list when the server keeps them.
import { ApiError, apiKey, conversations, features, streamAnswer } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const ui = {
  thread: $("thread"), title: $("thread-title"), status: $("status"), form: $("composer"),
  prompt: $("prompt"), send: $("send"), stop: $("stop"), list: $("conversations"),
  more: $("more-conversations"), note: $("history-note"), sidebar: $("sidebar"),
  toggle: $("toggle-list"), newChat: $("new-chat"), changeKey: $("change-key"),
  keyDialog: $("key-dialog"), keyForm: $("key-form"), keyInput: $("key-input"),
  keyForget: $("key-forget"), deleteDialog: $("delete-dialog"), deleteName: $("delete-name"),
  ground: $("ground"), groundLabel: $("ground-label"),
};
const MAX_HISTORY = 40; // messages resent per turn when the server keeps no conversations

const state = {
  stored: false, // the server keeps conversations (GET /conversations answers)
  current: null, // {id, title} of the open stored conversation
  history: [], // the open thread, as protocol messages
  sessionState: undefined,
  controller: null,
  cursor: null,
};

// ---------------------------------------------------------------------------------- rendering
function bubble(role) {
  const element = document.createElement("article");
  element.className = `message ${role}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : "Assistant";
  const body = document.createElement("div");
  body.className = "body";
  element.append(who, body);
  ui.thread.append(element);
  return element;
}

function addUser(text) {
  bubble("user").querySelector(".body").textContent = text;
}

function paintAnswer(element, text) {
  const body = element.querySelector(".body");
  body.innerHTML = renderMarkdown(text);
  for (const pre of body.querySelectorAll("pre")) addCopyButton(pre);
}

function addCopyButton(pre) {
  if (!navigator.clipboard) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.setAttribute("aria-label", "Copy code");
  button.addEventListener("click", () => {
    navigator.clipboard.writeText(pre.querySelector("code")?.textContent ?? pre.textContent).then(
      () => { button.textContent = "Copied"; },
      () => { button.textContent = "Copy failed"; },
    );
  });
  pre.append(button);
}

function addLine(element, className, text) {
  const line = document.createElement("div");
  line.className = className;
  line.textContent = text;
  element.append(line);
  return line;
}

function addDetails(element, summary, content) {
  const details = document.createElement("details");
  const head = document.createElement("summary");
  head.textContent = summary;
  const pre = document.createElement("pre");
  pre.textContent = content;
  details.append(head, pre);
  element.insertBefore(details, element.querySelector(".body"));
  return details;
}

function showSources(element, points) {
  if (!Array.isArray(points) || points.length === 0) return;
  const text = points
    .map((p, i) => (typeof p === "string" ? p : `[${i + 1}] ${p.title ?? p.source ?? p.id ?? ""}\n${p.source ?? ""}\n${p.text ?? JSON.stringify(p)}`))
    .join("\n\n");
  addDetails(element, `Sources (${points.length})`, text);
}

function showTool(element, context) {
  if (context.tool_call) {
    const { name, arguments: args } = context.tool_call;
    addDetails(element, `Tool call: ${name}`, String(args ?? ""));
  }
  if (context.tool_result) {
    const { name, content, error } = context.tool_result;
    const failed = error !== undefined && error !== null;
    const text = failed ? JSON.stringify(error) : String(content ?? "");
    addDetails(element, `Tool ${failed ? "error" : "result"}: ${name}`, text);
  }
}

function describe(error) {
  if (error.status === 401) return "The server needs an API key.";
  let line = `${error.message} (${error.status ? `${error.status} ` : ""}${error.code})`;
  if (error.status === 429 || error.status === 503) {
    line += error.retryAfter !== null ? ` Try again in ${error.retryAfter} s.` : " Try again shortly.";
  }
  return line;
}

function clearThread(title = "New chat") {
  ui.thread.replaceChildren();
  ui.title.textContent = title;
  state.history = [];
  state.sessionState = undefined;
}

function say(text) {
  ui.status.textContent = text;
}

// ------------------------------------------------------------------------------- the answer
async function send(text) {
  if (state.controller || !text.trim()) return;
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  ui.prompt.value = "";
  addUser(text);
  const answer = bubble("assistant");
  answer.setAttribute("aria-busy", "true");
  const turn = { text: "", streamed: false, timer: null };
  const paint = () => {
    turn.timer = null;
    paintAnswer(answer, turn.text);
  };
  const user = { role: "user", content: text };
  try {
    const endpoint = await endpointFor(text);
    const messages = state.stored ? [user] : [...state.history, user].slice(-MAX_HISTORY);
    say("Answering…");
    state.history.push(user);
    // Grounded: the server searches the documents and sends the sources on the first line.
    const requestContext = ui.ground.checked ? { overrides: { retrieval: {} } } : undefined;
    const stream = streamAnswer({ endpoint, messages, context: requestContext, sessionState: state.sessionState, signal: controller.signal });
    for await (const line of stream) {
      turn.streamed = true;
      const context = line.context ?? {};
      showSources(answer, context.data_points);
      showTool(answer, context);
      if (line.delta?.content) {
        turn.text += line.delta.content;
        turn.timer ??= setTimeout(paint, 30);
      }
      if ("sessionState" in line) state.sessionState = line.sessionState;
      if (context.finish_reason && context.finish_reason !== "stop") {
        addLine(answer, "meta", `Finished: ${context.finish_reason}`);
      }
    }
    say("");
  } catch (error) {
    if (controller.signal.aborted) {
      addLine(answer, "meta", "Stopped.");
      say("Stopped.");
      if (!turn.streamed && !ui.prompt.value) ui.prompt.value = text;
    } else {
      failed(answer, error, turn.streamed, text);
    }
  } finally {
    // A turn that got no answer is not kept: its text is back in the box to resend.
    if (!turn.streamed && state.history.at(-1) === user) state.history.pop();
    clearTimeout(turn.timer);
    paint();
    if (turn.text) state.history.push({ role: "assistant", content: turn.text });
    answer.removeAttribute("aria-busy");
    state.controller = null;
    setBusy(false);
    if (state.stored) refreshList();
  }
}

function failed(answer, error, streamed, text) {
  if (!(error instanceof ApiError)) throw error;
  const line = addLine(answer, "error-line", describe(error));
  line.setAttribute("role", "alert");
  say("");
  if (!streamed && !ui.prompt.value) ui.prompt.value = text; // nothing was answered: resend
  if (error.status === 401) askKey();
}

async function endpointFor(text) {
  if (!state.stored) return "/chat";
  if (!state.current) {
    const created = await conversations.create(text.slice(0, 60));
    openedConversation(created);
  }
  return `/conversations/${encodeURIComponent(state.current.id)}/chat`;
}

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  if (!busy) ui.prompt.focus();
}

// ---------------------------------------------------------------------- conversation list
async function refreshList() {
  try {
    const page = await conversations.list();
    renderList(page.data);
    state.cursor = page.next_cursor;
    ui.more.hidden = !state.cursor;
  } catch (error) {
    listFailed(error);
  }
}

async function moreConversations() {
  try {
    const page = await conversations.list(state.cursor);
    renderList(page.data, true);
    state.cursor = page.next_cursor;
    ui.more.hidden = !state.cursor;
  } catch (error) {
    listFailed(error);
  }
}

function listFailed(error) {
  if (!(error instanceof ApiError)) throw error;
  if (error.status === 404) return storeMissing();
  if (error.status === 401) return askKey().then(refreshList);
  say(`Conversations: ${describe(error)}`);
}

function storeMissing() {
  state.stored = false;
  state.current = null;
  ui.note.hidden = false;
  ui.list.replaceChildren();
  ui.more.hidden = true;
}

function renderList(items, append = false) {
  if (!append) ui.list.replaceChildren();
  for (const item of items) ui.list.append(listItem(item));
}

function listItem(item) {
  const li = document.createElement("li");
  li.dataset.id = item.id;
  if (state.current?.id === item.id) li.setAttribute("aria-current", "true");
  const title = item.title || "Untitled";
  const open = button("open", title, `Open ${title}`, () => openConversation(item.id));
  const rename = button("rename", "Rename", `Rename ${title}`, () => startRename(li, item));
  const remove = button("delete", "Delete", `Delete ${title}`, () => confirmDelete(item));
  li.append(open, rename, remove);
  return li;
}

function button(className, text, label, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.setAttribute("aria-label", label);
  element.addEventListener("click", onClick);
  return element;
}

function startRename(li, item) {
  const input = document.createElement("input");
  input.value = item.title || "";
  input.setAttribute("aria-label", "New title (Enter saves, Escape cancels)");
  li.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== item.title) {
      try {
        await conversations.rename(item.id, title);
        if (state.current?.id === item.id) ui.title.textContent = title;
      } catch (error) {
        listFailed(error);
      }
    }
    refreshList();
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); finish(true); }
    if (event.key === "Escape") { event.preventDefault(); finish(false); }
  });
  input.addEventListener("blur", () => finish(true));
}

function confirmDelete(item) {
  ui.deleteName.textContent = item.title || "Untitled";
  ui.deleteDialog.returnValue = "";
  ui.deleteDialog.onclose = async () => {
    if (ui.deleteDialog.returnValue !== "delete") return;
    try {
      await conversations.remove(item.id);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) return listFailed(error);
    }
    if (state.current?.id === item.id) newChat();
    refreshList();
  };
  ui.deleteDialog.showModal();
}

async function openConversation(id) {
  if (state.controller) return;
  let conversation;
  try {
    conversation = await conversations.get(id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      say("That conversation no longer exists.");
      newChat();
      return refreshList();
    }
    return listFailed(error);
  }
  openedConversation(conversation);
  clearThread(conversation.title || "Untitled");
  showStored(conversation.messages ?? []);
  closeSidebar();
  refreshList();
}

function openedConversation(conversation) {
  state.current = { id: conversation.id, title: conversation.title };
  ui.title.textContent = conversation.title || "Untitled";
  history.replaceState(null, "", `#c=${encodeURIComponent(conversation.id)}`);
}

// A stored answer is its tool rounds (assistant messages with tool_calls, each followed by its
// tool results) and then its final message: one bubble, as it looked while it streamed.
function showStored(messages) {
  let answer = null;
  let text = "";
  for (const message of messages) {
    if (message.role === "user") {
      answer = null;
      addUser(message.content);
      continue;
    }
    if (!answer) {
      answer = bubble("assistant");
      text = "";
    }
    if (message.role === "tool") {
      const { name, content, error } = message;
      showTool(answer, { tool_result: { name, content, error } });
      continue;
    }
    for (const call of message.tool_calls ?? []) showTool(answer, { tool_call: call });
    text += message.content ?? "";
    paintAnswer(answer, text);
    if (message.tool_calls) continue;
    const reason = message.finish_reason;
    if (reason && reason !== "stop") addLine(answer, "meta", `Finished: ${reason}`);
    answer = null;
  }
}

function newChat() {
  if (state.controller) state.controller.abort();
  state.current = null;
  history.replaceState(null, "", location.pathname);
  clearThread();
  for (const li of ui.list.children) li.removeAttribute("aria-current");
  closeSidebar();
  ui.prompt.focus();
}

// ------------------------------------------------------------------------------ API key
function askKey() {
  ui.changeKey.hidden = false;
  if (ui.keyDialog.open) return new Promise((resolve) => ui.keyDialog.addEventListener("close", resolve, { once: true }));
  ui.keyInput.value = "";
  ui.keyDialog.showModal();
  return new Promise((resolve) => {
    ui.keyDialog.addEventListener("close", () => {
      if (ui.keyDialog.returnValue === "save" && ui.keyInput.value.trim()) apiKey.set(ui.keyInput.value.trim());
      ui.keyInput.value = "";
      resolve();
    }, { once: true });
  });
}

// ---------------------------------------------------------------------------------- wiring
function closeSidebar() {
  ui.sidebar.classList.remove("open");
  ui.toggle.setAttribute("aria-expanded", "false");
}

function wire() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(ui.prompt.value);
  });
  ui.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.form.requestSubmit();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.controller) state.controller.abort();
  });
  ui.stop.addEventListener("click", () => state.controller?.abort());
  ui.newChat.addEventListener("click", newChat);
  ui.more.addEventListener("click", moreConversations);
  ui.changeKey.addEventListener("click", askKey);
  ui.keyForget.addEventListener("click", () => {
    apiKey.forget();
    ui.keyDialog.close("forget");
  });
  ui.toggle.addEventListener("click", () => {
    const open = ui.sidebar.classList.toggle("open");
    ui.toggle.setAttribute("aria-expanded", String(open));
  });
  if (apiKey.get()) ui.changeKey.hidden = false;
}

async function start() {
  wire();
  let offered = { conversations: false, documents: false };
  try {
    offered = await features();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
  ui.groundLabel.hidden = !offered.documents;
  if (!offered.conversations) return storeMissing();
  state.stored = true;
  await refreshList();
  const id = new URLSearchParams(location.hash.slice(1)).get("c");
  if (id && state.stored) await openConversation(id);
}

start().finally(() => {
  document.documentElement.dataset.ready = "true";
});
