// A JSON API read again every few seconds while the page is visible (the Nodes panel, the Library's
// "Wanted models"). One read at a time, each cut off after `timeout` ms; a failure (an error status,
// a timeout, no server, an answer that is not JSON or not the expected shape) goes to `failed` and
// the next tick tries again, so a broken API never blocks the page and the panel recovers by itself.
// Hidden tabs are not polled: the timer stops on `visibilitychange` and reads at once on return.

export class PollError extends Error {}

/** GET ``path`` as JSON within ``timeout`` ms; ``check(data)`` says whether the shape is right. */
export async function readJson(path, { timeout = 4000, check = () => true } = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeout);
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, signal: abort.signal });
  } catch (error) {
    throw new PollError(abort.signal.aborted ? `no answer within ${timeout / 1000} s` : "Zishu is not answering");
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw new PollError(`HTTP ${response.status}`);
  let data;
  try {
    data = await response.json();
  } catch (error) {
    throw new PollError("the answer is not JSON");
  }
  if (!data || !check(data)) throw new PollError("the answer is not in the expected shape");
  return data;
}

/** Read ``path`` now and every ``every`` ms while the page is visible; ``update(data)`` on success,
 * ``failed(error)`` otherwise. Returns ``{ refresh }`` to read at once (after an install, say). */
export function poll(path, { every = 5000, timeout = 4000, check, update, failed }) {
  let timer = null;
  let busy = false;

  async function tick() {
    clearTimeout(timer);
    timer = null;
    if (!busy) {
      busy = true;
      try {
        update(await readJson(path, { timeout, check }));
      } catch (error) {
        failed(error);
      } finally {
        busy = false;
      }
    }
    if (document.visibilityState !== "hidden" && timer === null) timer = setTimeout(tick, every);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      clearTimeout(timer);
      timer = null;
    } else if (timer === null && !busy) {
      tick();
    }
  });
  tick();
  return { refresh: tick };
}
