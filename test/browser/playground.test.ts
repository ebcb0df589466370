import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { startTestOrchestrator, type TestOrchestrator } from "../helpers/orchestrator.js";
import { launchBrowser, type TestBrowser } from "./browser.js";

/**
 * The playground page in headless Chromium, served by a real orchestrator
 * with real kernels. The steps run in order on one page and one session, like
 * a person trying it out; each leaves a screenshot in test-results/browser/.
 */
describe("the playground in a browser", () => {
  let orchestrator: TestOrchestrator;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    [orchestrator, browser] = await Promise.all([startTestOrchestrator(), launchBrowser()]);
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await orchestrator?.close();
  });

  /** Types code into the cell, runs it with Shift+Enter and waits until it has started. */
  async function run(code: string): Promise<void> {
    await page.locator("#run:not([disabled])").waitFor();
    await page.fill("#code", code);
    await page.press("#code", "Shift+Enter");
    await page.locator("#run[disabled]").waitFor();
  }

  async function finished(status: string): Promise<void> {
    await page.locator(`#output .done[data-status="${status}"]`).waitFor({ timeout: 30_000 });
  }

  it("creates a session from an API key and shows its start progress", async () => {
    await page.goto(`${orchestrator.url}/playground/`);
    await page.fill("#api-key", orchestrator.keys.alice);
    await page.click("#new-session");
    await page.locator('#status[data-status="ready"]').waitFor({ timeout: 30_000 });
    const phases = await page.locator("#progress li").evaluateAll((items) => items.map((item) => item.getAttribute("data-phase")));
    expect(phases.at(-1)).toBe("ready");
    expect(phases).toContain("connected");
    expect(await page.textContent("#connection")).toBe("connected");
    await browser.screenshot(page, "01-session-started");
  });

  it("runs a matplotlib plot and shows it as an <img>, and HTML in a sandboxed iframe", async () => {
    await run("import matplotlib.pyplot as plt\nfrom IPython.display import HTML, display\nplt.plot([1, 4, 9, 16])\nplt.show()\ndisplay(HTML('<table border=1><tr><td>sandboxed</td><td>html</td></tr></table>'))");
    await finished("ok");
    const image = page.locator('#output img[src^="data:image/png;base64,"]');
    await image.waitFor();
    expect(await image.evaluate((img) => (img instanceof HTMLImageElement ? img.naturalWidth : 0))).toBeGreaterThan(100);
    const frame = page.locator("#output iframe");
    expect(await frame.getAttribute("sandbox")).toBe("allow-scripts");
    expect(await page.frameLocator("#output iframe").locator("td").first().textContent()).toBe("sandboxed");
    await browser.screenshot(page, "02-plot-and-html");
  });

  it("answers input() in place", async () => {
    await run("name = input('Your name? ')\nprint('hello', name)");
    const field = page.locator("#output .input-prompt input");
    await field.waitFor();
    await browser.screenshot(page, "03-input-prompt");
    await field.fill("Ada");
    await field.press("Enter");
    await finished("ok");
    expect(await page.locator("#output pre.stdout").textContent()).toBe("hello Ada\n");
    await browser.screenshot(page, "04-input-answered");
  });

  it("uploads a file, uses it from code, and downloads it again", async () => {
    await page.setInputFiles("#upload", { name: "numbers.csv", mimeType: "text/csv", buffer: Buffer.from("a,b\n1,2\n3,4\n") });
    const row = page.locator('#file-list li[data-path="numbers.csv"]');
    await row.waitFor();
    await run("import pandas as pd\ndf = pd.read_csv('numbers.csv')\nprint('sum', int(df.a.sum() + df.b.sum()))\ndf.to_csv('doubled.csv', index=False)");
    await finished("ok");
    expect(await page.locator("#output pre.stdout").textContent()).toBe("sum 10\n");
    await page.locator('#file-list li[data-path="doubled.csv"]').waitFor();
    const [download] = await Promise.all([page.waitForEvent("download"), row.getByRole("button", { name: "Download numbers.csv" }).click()]);
    expect(download.suggestedFilename()).toBe("numbers.csv");
    expect(await readFile(await download.path(), "utf8")).toBe("a,b\n1,2\n3,4\n");
    await browser.screenshot(page, "05-files");
  });

  it("interrupts an infinite loop with the Interrupt button", async () => {
    await run("import time\ni = 0\nwhile True:\n    i += 1\n    if i % 10 == 0:\n        print('tick', i, flush=True)\n    time.sleep(0.01)");
    await page.locator("#output pre.stdout", { hasText: "tick 30" }).waitFor();
    await page.click("#interrupt");
    await finished("error");
    expect(await page.locator("#output pre.error").textContent()).toContain("KeyboardInterrupt");
    await browser.screenshot(page, "06-interrupted");
  });

  it("re-attaches after a reload during a long run and shows every line exactly once", async () => {
    const lines = 3_000;
    await run(`import sys, time\nfor i in range(${lines}):\n    print(f'line {i}')\n    if i % 50 == 49:\n        sys.stdout.flush()\n        time.sleep(0.04)`);
    await page.locator("#output pre.stdout", { hasText: "line 1000\n" }).waitFor();
    await page.reload();
    await finished("ok");
    const text = (await page.locator("#output pre.stdout").allTextContents()).join("");
    // One line missing, doubled or out of order anywhere breaks the equality.
    expect(text).toBe(Array.from({ length: lines }, (_, i) => `line ${i}\n`).join(""));
    expect(await page.inputValue("#code")).toContain(`range(${lines})`);
    await page.locator('#status[data-status="ready"]').waitFor();
    await browser.screenshot(page, "07-reloaded-mid-run");
  });
});
