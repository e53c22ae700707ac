// Shows the newest posts from the API in the page's #posts section. Post text becomes text nodes
// only (textContent, never innerHTML), so no title or body can turn into markup or script.
"use strict";

function element(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

// <bdi>: a bidi override inside user text cannot reorder what follows it.
function article(post) {
  const title = element("h2");
  title.append(element("bdi", post.title));
  const excerpt = element("p");
  excerpt.append(element("bdi", post.excerpt));
  if (post.truncated) excerpt.append("…");
  const created = element("time", post.created_at);
  created.dateTime = post.created_at;
  const item = element("article");
  item.append(title, excerpt, created);
  return item;
}

async function showPosts(section) {
  let shown = [element("p", "The posts cannot be shown right now; reload the page in a moment.")];
  let state = "failed";
  try {
    const response = await fetch(section.dataset.source, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const page = await response.json();
      shown = page.posts.length ? page.posts.map(article) : [element("p", "No posts yet.")];
      state = "loaded";
    }
  } catch {
    // No answer at all (offline, connection reset): the same message as a 503.
  }
  section.replaceChildren(...shown);
  section.dataset.state = state;
}

showPosts(document.getElementById("posts"));
