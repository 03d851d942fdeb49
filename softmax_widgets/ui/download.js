// The export pane's browser download (an anywidget module: front_end.Download): a data: link, shown as
// "download NAME again", clicked once in this page within two minutes of being sent. A page reloaded with this
// widget's saved state, or a second view of it, downloads nothing (window.__swDownloads remembers each token).

export default {
  render({ model, el }) {
    const draw = (fresh) => {
      const url = model.get("url"), name = model.get("name"), token = model.get("token");
      el.replaceChildren();
      if (!url) return;
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      a.style.fontSize = "12px";
      a.textContent = model.get("label");
      el.appendChild(a);
      const w = (window.__swDownloads = window.__swDownloads || {});
      if (fresh && !w[token] && Date.now() < model.get("until")) {
        w[token] = true;
        a.click();
      }
    };
    const changed = () => draw(true);
    draw(true);
    model.on("change:token", changed);
    return () => model.off("change:token", changed);
  },
};
