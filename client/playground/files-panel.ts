import type { Session } from "@tether/client";

/** The session's workspace: list, upload (the file input), download (a Blob link), delete. */
export class FilesPanel {
  private session: Session | undefined;

  constructor(
    private readonly list: HTMLUListElement,
    private readonly upload: HTMLInputElement,
    private readonly refreshButton: HTMLButtonElement,
    private readonly report: (error: unknown) => void,
  ) {
    upload.addEventListener("change", () => void this.uploadChosen());
    refreshButton.addEventListener("click", () => void this.refresh());
  }

  attach(session: Session): void {
    this.session = session;
    this.upload.disabled = false;
    this.refreshButton.disabled = false;
    void this.refresh();
  }

  async refresh(): Promise<void> {
    const session = this.session;
    if (!session) return;
    try {
      const { files, truncated } = await session.files.list();
      this.list.replaceChildren(...files.map((file) => this.row(session, file.path, file.size)));
      if (truncated) this.list.append(Object.assign(document.createElement("li"), { textContent: "… more files than listed" }));
    } catch (error) {
      this.report(error);
    }
  }

  private row(session: Session, path: string, size: number): HTMLLIElement {
    const item = document.createElement("li");
    item.dataset.path = path;
    const name = document.createElement("span");
    name.textContent = `${path} (${formatBytes(size)})`;
    const download = button("↓", `Download ${path}`, async () => {
      const blob = await session.files.downloadBlob(path);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = path.split("/").pop() ?? "download";
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    });
    const remove = button("✕", `Delete ${path}`, async () => {
      await session.files.remove(path);
      await this.refresh();
    });
    item.append(name, download, remove);
    item.addEventListener("tether-error", (event) => this.report(event instanceof CustomEvent ? event.detail : event));
    return item;
  }

  private async uploadChosen(): Promise<void> {
    const session = this.session;
    if (!session || !this.upload.files) return;
    try {
      for (const file of this.upload.files) await session.files.upload(file.name, file);
      this.upload.value = "";
      await this.refresh();
    } catch (error) {
      this.report(error);
    }
  }
}

function button(label: string, title: string, action: () => Promise<void>): HTMLButtonElement {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.title = title;
  element.setAttribute("aria-label", title);
  element.addEventListener("click", () => {
    action().catch((error: unknown) => element.dispatchEvent(new CustomEvent("tether-error", { detail: error, bubbles: true })));
  });
  return element;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
