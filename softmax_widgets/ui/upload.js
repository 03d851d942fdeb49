// The export pane's upload of a state file (an anywidget module: front_end.Upload). The page looks at the file's
// size before it reads a byte of it: over `limit` it sends only the name and the size, so a 1 GB file never
// leaves the browser (one that did would be cut off by the server's websocket limit, and the page would only say
// it lost its connection); the kernel answers with the reason on the export tab. Under the limit the bytes go in
// pieces of `chunk` bytes, each one websocket message well under the server's limit (tornado's is 10 MiB).

export default {
  render({ model, el }) {
    const button = document.createElement("button");
    button.className = "jupyter-widgets jupyter-button widget-button";
    button.textContent = model.get("label");
    button.style.width = "220px"; // the label whole, never cut to "load state fi…"
    button.title = "choose a state file (.pt) that the export tab or trainer.save(path) wrote";
    const input = document.createElement("input");
    input.type = "file";
    input.accept = model.get("accept");
    input.style.display = "none";
    button.addEventListener("click", () => input.click());
    const chosen = async () => {
      const file = input.files[0];
      input.value = ""; // the same file can be chosen again (after an undo)
      if (!file) return;
      const about = { name: file.name, size: file.size };
      if (file.size > model.get("limit")) {
        model.send({ event: "too_big", ...about });
        return;
      }
      const upload = `${Date.now()}-${Math.random()}`, chunk = model.get("chunk");
      button.disabled = true;
      try {
        for (let offset = 0; offset === 0 || offset < file.size; offset += chunk) {
          const piece = await file.slice(offset, offset + chunk).arrayBuffer();
          model.send({ event: "piece", upload, offset, ...about }, undefined, [piece]);
        }
      } catch (err) {
        model.send({ event: "unreadable", error: String((err && err.message) || err), ...about });
      } finally {
        button.disabled = false;
      }
    };
    input.addEventListener("change", chosen);
    el.append(button, input);
    const relabel = () => {
      button.textContent = model.get("label");
    };
    model.on("change:label", relabel);
    return () => model.off("change:label", relabel);
  },
};
