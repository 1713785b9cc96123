// Model output is untrusted: Markdown is rendered with marked, raw HTML in it is shown as text,
// images become links (no request leaves the page unasked), and DOMPurify cleans what is left
// (no event handlers, no javascript: or data: links) before it reaches the DOM.
import { Marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.js";

const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => escapes[c]);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    image: ({ href, text }) => `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`,
  },
});

const purify = DOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});
const POLICY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "img", "svg", "math", "form", "input", "button", "textarea", "select",
    "iframe", "video", "audio", "source", "picture"],
  FORBID_ATTR: ["style", "id", "name", "srcset"],
};

/** Safe HTML for a Markdown text (possibly incomplete, while it streams). */
export function renderMarkdown(text) {
  return purify.sanitize(marked.parse(text), POLICY);
}
