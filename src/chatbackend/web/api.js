// The server's API as the page uses it: the AI Chat Protocol client for answers, fetch for the
// conversation store, and the API key (sessionStorage only) for both.
import { AIChatProtocolClient } from "./vendor/ai-chat-protocol.js";

const KEY_ITEM = "chatbackend.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_ITEM),
  set: (key) => sessionStorage.setItem(KEY_ITEM, key),
  forget: () => sessionStorage.removeItem(KEY_ITEM),
};

function authHeaders() {
  const key = apiKey.get();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** A failed call: HTTP status (0 for a network failure), protocol code, message, retry hint. */
export class ApiError extends Error {
  constructor({ status, code, message, retryAfter = null, midStream = false }) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.midStream = midStream;
  }
}

function retrySeconds(header) {
  const seconds = Number(header);
  return header && Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) : null;
}

async function call(method, path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  } catch {
    throw new ApiError({ status: 0, code: "network", message: "The server cannot be reached." });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError({
      status: response.status,
      code: data?.error?.code ?? `http_${response.status}`,
      message: data?.error?.message ?? `The request failed (${response.status}).`,
      retryAfter: retrySeconds(response.headers.get("retry-after")),
    });
  }
  return data;
}

const one = (id) => `/conversations/${encodeURIComponent(id)}`;

export const conversations = {
  list: (cursor) =>
    call("GET", `/conversations?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
  create: (title) => call("POST", "/conversations", { title }),
  get: (id) => call("GET", one(id)),
  rename: (id, title) => call("PATCH", one(id), { title }),
  remove: (id) => call("DELETE", one(id)),
};

export const features = () => call("GET", "/ui/config.json");

/**
 * The answer's protocol lines, streamed by the AI Chat Protocol client from ``endpoint``
 * (``/chat`` or ``/conversations/{id}/chat``; the client appends ``/stream``). Aborting
 * ``signal`` cancels the HTTP request, which closes the upstream stream on the server.
 * ``context`` is the request's protocol context (``{overrides: {retrieval: {}}}`` grounds it).
 */
export async function* streamAnswer({ endpoint, messages, context, sessionState, signal }) {
  let status = 0;
  let retryAfter = null;
  const client = new AIChatProtocolClient(endpoint, {
    allowInsecureConnection: location.protocol === "http:",
    retryOptions: { maxRetries: 0 },
  });
  const options = {
    context,
    sessionState,
    abortSignal: signal,
    requestOptions: { headers: authHeaders() },
    onResponse: (response) => {
      status = response.status;
      retryAfter = retrySeconds(response.headers.get("retry-after"));
    },
  };
  let lines;
  try {
    lines = await client.getStreamedCompletion(messages, options);
  } catch (error) {
    throw asApiError(error, { status, retryAfter, signal });
  }
  try {
    yield* lines;
  } catch (error) {
    throw asApiError(error, { status, retryAfter: null, signal, midStream: true });
  }
}

function asApiError(error, { status, retryAfter, signal, midStream = false }) {
  if (signal.aborted) return error;
  if (error && typeof error.code === "number") {
    const code = `http_${error.code}`;
    return new ApiError({ status: error.code, code, message: error.message, retryAfter, midStream });
  }
  if (error && typeof error.code === "string" && typeof error.message === "string") {
    return new ApiError({ status, code: error.code, message: error.message, retryAfter, midStream });
  }
  const message = midStream ? "The connection was lost mid-answer." : "The server cannot be reached.";
  return new ApiError({ status: midStream ? status : 0, code: "network", message, midStream });
}
