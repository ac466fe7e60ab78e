// Tidings web client: small enhancements over server-rendered pages. No framework, no build.
//
// Every page works without this file. With it: the composer sends with Enter through the API,
// new posts arrive over the websocket and are shown as the server renders them (the same
// template as the page, fetched from /web/posts/<id>), older posts load in place, the thread
// panel opens without a reload, and mentions and direct messages raise desktop notifications.
"use strict";

(function () {
  const body = document.body;
  const me = body.dataset.userId || "";
  const myName = body.dataset.username || "";
  const teamId = body.dataset.teamId || "";
  const channelId = body.dataset.channelId || "";

  function cookie(name) {
    const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  // API calls from the page use the session cookie, so they must carry the CSRF token.
  function api(method, path, data) {
    return fetch("/api/v4" + path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("MMCSRF") },
      body: data === undefined ? undefined : JSON.stringify(data),
    });
  }

  async function fragment(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return null;
    return { html: await response.text(), headers: response.headers };
  }

  function elementsFrom(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return Array.from(template.content.children);
  }

  // --- small things on every page -----------------------------------------------------------

  function localiseTimes(root) {
    root.querySelectorAll("time[data-ms]").forEach((el) => {
      const when = new Date(Number(el.dataset.ms));
      if (isNaN(when)) return;
      el.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      el.title = when.toLocaleString();
    });
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(() => {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = label), 1500);
    });
  });

  localiseTimes(document);
  if (!channelId) return;

  // --- the channel view ---------------------------------------------------------------------

  const postList = document.getElementById("posts");
  const threadPanel = document.getElementById("thread");
  const fetching = new Map();

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 160;
  }

  function scrollToBottom(el) {
    el.scrollTop = el.scrollHeight;
  }

  function postTime(el) {
    const time = el.querySelector("time[data-ms]");
    return time ? Number(time.dataset.ms) : 0;
  }

  // Put a rendered post in time order, replacing an older rendering of the same post.
  function place(container, el) {
    const existing = document.getElementById(el.id);
    if (existing) {
      existing.replaceWith(el);
      return;
    }
    const empty = container.querySelector(".empty-channel");
    if (empty) empty.remove();
    const posts = Array.from(container.querySelectorAll(":scope > .post"));
    const at = postTime(el);
    let after = null;
    for (let i = posts.length - 1; i >= 0; i--) {
      if (postTime(posts[i]) <= at) {
        after = posts[i];
        break;
      }
    }
    if (after) after.after(el);
    else if (posts.length) posts[0].before(el);
    else container.append(el);
  }

  async function showPost(postId, rootId) {
    const key = postId + "/" + (rootId || "");
    if (fetching.has(key)) return fetching.get(key);
    const job = (async () => {
      const stick = nearBottom(postList);
      const found = await fragment("/web/posts/" + encodeURIComponent(postId));
      if (found) {
        elementsFrom(found.html).forEach((el) => {
          localiseTimes(el);
          place(postList, el);
        });
        if (stick) scrollToBottom(postList);
      }
      const thread = openThreadRoot();
      if (thread && (thread === rootId || thread === postId)) {
        const list = threadPanel.querySelector(".thread-posts");
        const stickThread = nearBottom(list);
        const inThread = await fragment("/web/posts/" + encodeURIComponent(postId) + "?view=thread");
        if (inThread) {
          elementsFrom(inThread.html).forEach((el) => {
            localiseTimes(el);
            place(list, el);
          });
          if (stickThread) scrollToBottom(list);
        }
      }
      if (rootId && document.getElementById("post-" + rootId)) showPost(rootId, ""); // reply count
    })();
    fetching.set(key, job);
    try {
      await job;
    } finally {
      fetching.delete(key);
    }
  }

  // --- composer: Enter sends, Shift+Enter is a new line ------------------------------------

  document.addEventListener("keydown", (event) => {
    const area = event.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.closest("form.composer")) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      area.form.requestSubmit();
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.classList.contains("composer") || event.defaultPrevented) return;
    event.preventDefault();
    const area = form.querySelector("textarea");
    const error = form.querySelector(".composer-error");
    const message = area.value;
    if (!message.trim()) return;
    error.hidden = true;
    const rootId = form.dataset.rootId || "";
    let response;
    try {
      response = await api("POST", "/posts", {
        channel_id: form.dataset.channelId,
        message: message,
        root_id: rootId,
      });
    } catch (failure) {
      error.textContent = "Could not send the message. Check your connection and try again.";
      error.hidden = false;
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      error.textContent = data.message || "Could not send the message.";
      error.hidden = false;
      return;
    }
    area.value = "";
    area.focus();
    showPost(data.id, data.root_id);
    scrollToBottom(postList);
  });

  // --- older posts --------------------------------------------------------------------------

  postList.addEventListener("click", async (event) => {
    const link = event.target.closest(".load-older");
    if (!link) return;
    event.preventDefault();
    const first = postList.querySelector(":scope > .post");
    if (!first) return;
    link.setAttribute("aria-busy", "true");
    const found = await fragment(
      "/web/channels/" + channelId + "/posts?before=" + encodeURIComponent(first.dataset.postId)
    );
    link.removeAttribute("aria-busy");
    if (!found) return;
    const height = postList.scrollHeight;
    elementsFrom(found.html).forEach((el) => {
      localiseTimes(el);
      first.before(el);
    });
    postList.scrollTop += postList.scrollHeight - height;
    if (found.headers.get("X-Tidings-Has-More") !== "true") link.closest(".load-older-row").remove();
  });

  // --- thread panel -------------------------------------------------------------------------

  function openThreadRoot() {
    if (threadPanel.hidden) return "";
    const inner = threadPanel.querySelector(".thread-inner");
    return inner ? inner.dataset.rootId : "";
  }

  async function openThread(rootId, push) {
    const found = await fragment("/web/posts/" + encodeURIComponent(rootId) + "/thread");
    if (!found) return false;
    threadPanel.innerHTML = found.html;
    threadPanel.hidden = false;
    document.getElementById("main").classList.add("with-thread");
    localiseTimes(threadPanel);
    scrollToBottom(threadPanel.querySelector(".thread-posts"));
    if (push) history.pushState({ thread: rootId }, "", "?thread=" + encodeURIComponent(rootId));
    const area = threadPanel.querySelector("textarea");
    if (area) area.focus();
    return true;
  }

  function closeThread(push) {
    threadPanel.hidden = true;
    threadPanel.innerHTML = "";
    document.getElementById("main").classList.remove("with-thread");
    if (push) history.pushState({}, "", location.pathname);
  }

  document.addEventListener("click", async (event) => {
    const open = event.target.closest("[data-thread]");
    if (open) {
      event.preventDefault();
      if (!(await openThread(open.dataset.thread, true))) location.href = open.href;
      return;
    }
    if (event.target.closest(".thread-close")) {
      event.preventDefault();
      closeThread(true);
    }
  });

  window.addEventListener("popstate", () => {
    const wanted = new URLSearchParams(location.search).get("thread");
    if (wanted) openThread(wanted, false);
    else closeThread(false);
  });

  // --- sidebar: unread marks, new channels ------------------------------------------------

  async function refreshSidebar() {
    const found = await fragment(
      "/web/teams/" + teamId + "/sidebar?channel_id=" + encodeURIComponent(channelId)
    );
    const current = document.getElementById("sidebar");
    if (!found || !current) return;
    const [fresh] = elementsFrom(found.html);
    if (fresh) current.replaceWith(fresh);
  }

  function markUnread(id) {
    const link = document.querySelector('.sidebar [data-channel-id="' + CSS.escape(id) + '"]');
    if (link) link.classList.add("unread");
    else refreshSidebar();
  }

  let viewTimer = null;
  function markViewed() {
    clearTimeout(viewTimer);
    viewTimer = setTimeout(() => {
      if (document.visibilityState === "visible") {
        api("POST", "/channels/members/me/view", { channel_id: channelId });
      }
    }, 800);
  }

  // --- desktop notifications ------------------------------------------------------------------

  const notifyButton = document.querySelector(".notify-button");
  function updateNotifyButton() {
    if (!notifyButton) return;
    notifyButton.hidden = !("Notification" in window) || Notification.permission !== "default";
  }
  if (notifyButton) {
    notifyButton.addEventListener("click", () => {
      Notification.requestPermission().then(updateNotifyButton);
    });
    updateNotifyButton();
  }

  const escaped = myName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const mentionPattern = new RegExp(
    "(^|[^a-z0-9_.-])@(" + escaped + "|channel|all|here)(?![a-z0-9_-])",
    "i"
  );

  function plainText(markdown) {
    return markdown
      .replace(/!\[[^\]]*\]\([^)]*\)/g, "")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/[#*_`>|~]+/g, " ")
      .replace(/\s+/g, " ")
      .trim()
      .slice(0, 200);
  }

  function notify(post, data) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const props = post.props || {};
    const fromWebhook = props.from_webhook === "true";
    if (post.user_id === me && !fromWebhook) return;
    let mentioned = false;
    try {
      mentioned = data.mentions ? JSON.parse(data.mentions).includes(me) : false;
    } catch (ignored) {
      mentioned = false;
    }
    mentioned = mentioned || mentionPattern.test(post.message || "");
    const direct = data.channel_type === "D";
    if (!direct && !mentioned) return;
    const looking = document.visibilityState === "visible" && document.hasFocus();
    if (looking && post.channel_id === channelId) return;
    // Webhook posts speak as their override name (the seed's known issue, fixed).
    const name =
      (fromWebhook && props.override_username) || (data.sender_name || "").replace(/^@/, "");
    const title = direct ? name : name + " in " + (data.channel_display_name || "a channel");
    const shown = new Notification(title, {
      body: plainText(post.message || "") || "New message",
      tag: post.id,
    });
    shown.onclick = () => {
      window.focus();
      const link = document.querySelector(
        '.sidebar [data-channel-id="' + CSS.escape(post.channel_id) + '"]'
      );
      if (link) location.href = link.href;
    };
  }

  // --- the websocket ------------------------------------------------------------------------

  const status = document.createElement("p");
  status.className = "form-error connection-status";
  status.setAttribute("role", "status");
  status.hidden = true;
  postList.before(status);

  let retryDelay = 1000;
  let connectedBefore = false;

  async function catchUp() {
    const posts = postList.querySelectorAll(":scope > .post");
    const last = posts[posts.length - 1];
    if (!last) return;
    const found = await fragment(
      "/web/channels/" + channelId + "/posts?after=" + encodeURIComponent(last.dataset.postId)
    );
    if (!found) return;
    elementsFrom(found.html).forEach((el) => {
      localiseTimes(el);
      place(postList, el);
    });
  }

  function handle(message) {
    const data = message.data || {};
    switch (message.event) {
      case "hello":
        status.hidden = true;
        retryDelay = 1000;
        if (connectedBefore) catchUp();
        connectedBefore = true;
        body.dataset.live = "true";
        break;
      case "posted": {
        let post;
        try {
          post = JSON.parse(data.post);
        } catch (ignored) {
          return;
        }
        if (post.channel_id === channelId) {
          showPost(post.id, post.root_id);
          markViewed();
        } else {
          markUnread(post.channel_id);
        }
        notify(post, data);
        break;
      }
      case "post_edited": {
        let post;
        try {
          post = JSON.parse(data.post);
        } catch (ignored) {
          return;
        }
        if (post.channel_id === channelId) showPost(post.id, post.root_id);
        break;
      }
      case "post_deleted": {
        let post;
        try {
          post = JSON.parse(data.post);
        } catch (ignored) {
          return;
        }
        ["post-", "thread-post-"].forEach((prefix) => {
          const el = document.getElementById(prefix + post.id);
          if (el) el.remove();
        });
        break;
      }
      case "direct_added":
      case "channel_created":
      case "user_added":
      case "added_to_team":
        refreshSidebar();
        break;
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/api/v4/websocket");
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (ignored) {
        return;
      }
      if (message && message.event) handle(message);
    });
    socket.addEventListener("close", (event) => {
      body.dataset.live = "false";
      if (event.code === 1008) {
        status.textContent = "Your session has ended. Reload the page to sign in again.";
        status.hidden = false;
        return;
      }
      status.textContent = "Reconnecting…";
      status.hidden = connectedBefore ? false : true;
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  scrollToBottom(postList);
  const openRoot = openThreadRoot();
  if (openRoot) scrollToBottom(threadPanel.querySelector(".thread-posts"));
  connect();
})();
