// The character's avatar in an element: its Live2D model, or a static one (its image or its initial).
//
//   const avatar = await mountAvatar(element, info);   // info: the JSON of GET /api/avatar/<owner>/<name>
//   avatar.kind           "live2d" | "image" | "placeholder"
//   avatar.expressions    the expression names it has
//   avatar.express(name, emotion)  set an expression (null: back to the neutral face); a still avatar's badge
//                                 shows ``emotion`` (else the name); resolves true when shown. A picture
//                                 avatar with a sheet (info.sheet: emotion → URL, made in the studio) shows
//                                 the emotion's picture, and its own picture for an emotion the sheet lacks
//   avatar.motion(group)  play a motion group once (Live2D; a static avatar just nods)
//   avatar.mouth(v)       open the mouth, 0..1 (call it every frame while speaking: see mouthLevel)
//   avatar.destroy()
//
// Live2D loads, in this order: the user's Cubism Core (/avatar/core.js, Live2D's proprietary code that
// Zishu does not ship), then the pinned vendor builds of pixi.js 6, @pixi/unsafe-eval (pixi without
// `new Function`, which the page's Content-Security-Policy forbids) and pixi-live2d-display's Cubism 4
// build. If any of that fails (no core, no WebGL), or the running core cannot show this model (a 3.x
// core; a model whose .moc3 format is newer than the core reads), the static avatar is shown with the
// reason ("this model needs a Cubism 5 core; yours is 4.1").
// The element gets data-avatar (the kind), data-expression (the current expression, or "") and, for a
// picture avatar with a sheet, data-picture (the emotion whose picture is shown, or "").

const VENDOR = "/static/vendor/";
const LIVE2D_SCRIPTS = ["/avatar/core.js", `${VENDOR}pixi.min.js`, `${VENDOR}unsafe-eval.min.js`, `${VENDOR}cubism4.min.js`];
const MOTION_PRIORITY = { IDLE: 1, NORMAL: 2, FORCE: 3 };
const MOUTH_PARAMETER = "ParamMouthOpenY"; // the standard Cubism parameter; a model's LipSync group wins

const EMOJI = {
  happy: "😊", excited: "🤩", angry: "😠", sad: "😢", surprised: "😮", coy: "😚", neutral: "🙂", shy: "😳",
  afraid: "😨", worried: "😟", disgusted: "🤢", confused: "😕", thinking: "🤔", proud: "😏", sleepy: "😪",
  love: "😍",
};

function node(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

// -- loading the Live2D libraries, once per page ------------------------------------------------

let live2dLoading = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.async = false;
    script.dataset.avatarScript = src;
    script.addEventListener("load", () => resolve());
    script.addEventListener("error", () => {
      script.remove();
      reject(new Error(`could not load ${src}`));
    });
    document.head.append(script);
  });
}

/** Cubism 5 cores are WebAssembly that starts up after the script ran: wait (up to ~5 s) until
 * the core answers, as pixi-live2d-display only retries for 200 ms. */
async function coreStarted(core) {
  if (!core.Version || typeof core.Version.csmGetVersion !== "function") {
    throw new Error("/avatar/core.js is not the Cubism Core for Web (it defines no Live2DCubismCore.Version)");
  }
  for (let i = 0; i < 250; i += 1) {
    try {
      if (core.Version.csmGetVersion()) return;
    } catch (error) {
      /* not started yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("the Cubism Core did not start (a Cubism 5 core needs WebAssembly)");
}

/** An error whose message is for the user as it stands (why Live2D is off for this model). */
class Refusal extends Error {}

function coreVersion(core) {
  const v = core.Version.csmGetVersion() >>> 0;
  return { major: v >>> 24, minor: (v >>> 16) & 0xff, patch: v & 0xffff };
}

/** Refuse what the running core cannot show, with the reason, before the renderer fails on it:
 * a core older than the renderer (3.x), or a model whose .moc3 format (info.moc, read by the
 * server from the file's header) is newer than the core reads (csmGetLatestMocVersion). */
function checkCore(core, info) {
  const v = coreVersion(core);
  if (v.major < 4 || typeof core.Version.csmGetLatestMocVersion !== "function") {
    throw new Refusal(`Cubism Core ${v.major}.${v.minor}.${v.patch} is older than the renderer works with: `
      + "use live2dcubismcore.min.js from the Cubism SDK for Web 4 or 5 (zishu live2d core)");
  }
  const latest = core.Version.csmGetLatestMocVersion();
  if (info.moc && info.moc.version > latest) {
    throw new Refusal(`this model needs a Cubism ${info.moc.needs} core; yours is ${v.major}.${v.minor}`);
  }
}

/** Cores from Cubism 5 SDK R5 on (6.x) moved the drawables' render order to Model.getRenderOrders(),
 * which covers drawables and offscreens; pixi-live2d-display 0.4 reads drawables.renderOrders. Give
 * it back, as the drawables' ranks in that order (0..count-1). Older cores are left as they are. */
export function adaptRenderOrders(core) {
  const fromMoc = core.Model && core.Model.fromMoc;
  if (typeof fromMoc !== "function" || fromMoc.zishuAdapted) return;
  const adapted = function (...args) {
    const model = fromMoc.apply(this, args);
    const drawables = model && model.drawables;
    if (drawables && drawables.renderOrders === undefined && typeof model.getRenderOrders === "function") {
      const ranks = new Int32Array(drawables.count);
      const index = [...ranks.keys()];
      Object.defineProperty(drawables, "renderOrders", {
        configurable: true,
        get() {
          const orders = model.getRenderOrders();
          index.sort((a, b) => orders[a] - orders[b] || a - b);
          index.forEach((drawable, rank) => { ranks[drawable] = rank; });
          return ranks;
        },
      });
    }
    return model;
  };
  adapted.zishuAdapted = true;
  core.Model.fromMoc = adapted;
}

async function loadLive2D() {
  if (!live2dLoading) {
    live2dLoading = (async () => {
      for (const src of LIVE2D_SCRIPTS) {
        if (!document.querySelector(`script[data-avatar-script="${src}"]`)) await loadScript(src);
      }
      if (!window.Live2DCubismCore) throw new Error("the Cubism Core did not load (is /avatar/core.js the real file?)");
      await coreStarted(window.Live2DCubismCore);
      adaptRenderOrders(window.Live2DCubismCore);
      if (!window.PIXI || !window.PIXI.live2d) throw new Error("pixi-live2d-display did not load");
      return window.PIXI;
    })();
    live2dLoading.catch(() => {
      live2dLoading = null;
    });
  }
  return live2dLoading;
}

// -- Live2D ---------------------------------------------------------------------------------------

function lipSyncIds(internal) {
  const groups = (internal.settings && internal.settings.groups) || [];
  const group = groups.find((g) => g && g.Name === "LipSync" && Array.isArray(g.Ids) && g.Ids.length);
  return group ? group.Ids : [MOUTH_PARAMETER];
}

async function mountLive2D(element, info) {
  const PIXI = await loadLive2D();
  checkCore(window.Live2DCubismCore, info);
  if (PIXI.utils && PIXI.utils.skipHello) PIXI.utils.skipHello();
  const canvas = node("canvas", "avatar-canvas");
  canvas.dataset.testid = "avatar-canvas";
  element.append(canvas);
  let app;
  let model;
  try {
    app = new PIXI.Application({ view: canvas, backgroundAlpha: 0, antialias: true, autoDensity: true,
      resolution: window.devicePixelRatio || 1, width: element.clientWidth || 300, height: element.clientHeight || 300 });
    model = await PIXI.live2d.Live2DModel.from(info.model_url, { autoInteract: false });
    // Cores from Cubism 5 SDK R5 on dropped the drawables' render order that pixi-live2d-display
    // 0.4 draws with: refuse them here rather than fail on every frame.
    if (model.internalModel.coreModel.getDrawableRenderOrders() === undefined) {
      throw new Error("this Cubism Core is newer than pixi-live2d-display 0.4 supports: use the Core of "
        + "Cubism SDK for Web 5-r.4 or earlier (or 4.x)");
    }
  } catch (error) {
    if (model) model.destroy();
    if (app) app.destroy(true);
    canvas.remove();
    throw error;
  }
  app.stage.addChild(model);
  const internal = model.internalModel;
  const motions = internal.motionManager;
  const expressionManager = motions.expressionManager;

  // Idle: pixi-live2d-display replays its idle group whenever nothing else plays; make sure that
  // group exists here (models name it Idle, idle, Idle_0...) and start it now.
  const groups = Object.keys(motions.definitions || {});
  const idle = groups.includes(motions.groups.idle) ? motions.groups.idle : groups.find((g) => /idle/i.test(g));
  if (idle) {
    motions.groups.idle = idle;
    model.motion(idle, undefined, MOTION_PRIORITY.IDLE);
  }

  // Fit the model inside the element, centred, and again whenever the element changes size.
  const natural = { width: model.width / model.scale.x, height: model.height / model.scale.y };
  model.anchor.set(0.5, 0.5);
  const fit = () => {
    const width = element.clientWidth || 300;
    const height = element.clientHeight || 300;
    app.renderer.resize(width, height);
    model.scale.set(Math.min(width / natural.width, height / natural.height) * 0.95);
    model.position.set(width / 2, height / 2);
  };
  fit();
  const resize = new ResizeObserver(fit);
  resize.observe(element);

  // The mouth: written after motions, expressions and physics, right before the model updates,
  // so the idle motion never closes it.
  let mouth = 0;
  const mouthIds = lipSyncIds(internal);
  const core = internal.coreModel;
  internal.on("beforeModelUpdate", () => {
    for (const id of mouthIds) core.setParameterValueById(id, mouth);
  });

  const names = ((expressionManager && expressionManager.definitions) || [])
    .map((d) => d.Name ?? d.name).filter((n) => typeof n === "string");
  const expressions = names.length ? names : [...(info.expressions || [])];
  const groupNames = groups.length ? groups : [...(info.motions || [])];

  return {
    kind: "live2d",
    expressions,
    motions: groupNames,
    model,
    async express(name) {
      if (!name) {
        if (expressionManager) {
          expressionManager.currentExpression = expressionManager.defaultExpression;
          expressionManager.resetExpression();
        }
        element.dataset.expression = "";
        return true;
      }
      if (!expressions.includes(name)) return false;
      await model.expression(name); // false when it is already the current one: still shown
      element.dataset.expression = name;
      return true;
    },
    async motion(group) {
      if (!group || !groupNames.includes(group)) return false;
      return model.motion(group, undefined, MOTION_PRIORITY.FORCE);
    },
    mouth(value) {
      mouth = Math.max(0, Math.min(1, Number(value) || 0));
    },
    destroy() {
      resize.disconnect();
      app.destroy(true, { children: true, texture: true, baseTexture: true });
    },
  };
}

// -- static ---------------------------------------------------------------------------------------

function mountStatic(element, info, kind) {
  const box = node("div", "avatar-static");
  const figure = node("div", "avatar-figure");
  let img = null;
  const sheet = kind === "image" ? { ...(info.sheet || {}) } : {};
  if (kind === "image") {
    img = node("img", "avatar-image");
    img.src = info.image_url;
    img.alt = info.name || "";
    img.dataset.testid = "avatar-image";
    figure.append(img);
    for (const url of Object.values(sheet)) new Image().src = url; // switch without a blank frame
  } else {
    const initial = node("span", "avatar-initial", info.initial || "?");
    initial.dataset.testid = "avatar-initial";
    figure.append(initial);
  }
  const mouthRing = node("span", "avatar-mouth");
  mouthRing.setAttribute("aria-hidden", "true");
  figure.append(mouthRing);
  const badge = node("span", "avatar-badge");
  badge.dataset.testid = "avatar-badge";
  badge.hidden = true;
  box.append(figure, badge);
  element.append(box);

  const expressions = [...(info.expressions || [])];
  const bump = (className) => {
    figure.classList.remove("avatar-nod", "avatar-bump");
    void figure.offsetWidth; // restart the animation
    figure.classList.add(className);
  };
  figure.addEventListener("animationend", () => figure.classList.remove("avatar-nod", "avatar-bump"));
  // the sheet's picture for an emotion (its name as the events carry it, else the expression's name)
  const showPicture = (emotion, name) => {
    if (!img || !Object.keys(sheet).length) return;
    const key = [emotion, name].map((k) => String(k || "").trim().toLowerCase()).find((k) => k && sheet[k]);
    img.src = key ? sheet[key] : info.image_url;
    element.dataset.picture = key || "";
  };

  return {
    kind,
    expressions,
    motions: [],
    // ``emotion``: the emotion the expression shows (``happy``), the badge's words; without it the
    // badge names the expression itself (the calibrator's previews)
    async express(name, emotion) {
      element.dataset.expression = name || "";
      showPicture(emotion, name);
      if (!name) {
        badge.hidden = true;
        badge.textContent = "";
        return true;
      }
      const shown = emotion || name;
      badge.textContent = `${EMOJI[shown] || "✦"} ${shown}`;
      badge.hidden = false;
      bump("avatar-bump");
      return true;
    },
    async motion(group) {
      if (!group) return false;
      bump("avatar-nod");
      return true;
    },
    mouth(value) {
      const v = Math.max(0, Math.min(1, Number(value) || 0));
      figure.style.setProperty("--mouth", v.toFixed(3));
    },
    destroy() {},
  };
}

function showWhy(element, why) {
  if (!why) return;
  const note = node("p", "avatar-why muted small", why);
  note.title = why;
  note.dataset.testid = "avatar-why";
  element.append(note);
}

/** Show the avatar ``info`` describes in ``element`` (replacing one mounted there before). */
export async function mountAvatar(element, info) {
  if (element.zishuAvatar) element.zishuAvatar.destroy();
  element.replaceChildren();
  element.classList.add("avatar-host");
  element.dataset.expression = "";
  let avatar = null;
  let why = info.why || "";
  if (info.kind === "live2d" && info.model_url) {
    element.dataset.avatar = "loading";
    try {
      avatar = await mountLive2D(element, info);
    } catch (error) {
      why = error instanceof Refusal
        ? `Live2D is off for ${info.name}: ${error.message}. Showing a still avatar instead.`
        : `Live2D could not start here (${error.message}): showing a still avatar instead.`;
      console.warn("avatar:", error);
    }
  }
  if (!avatar) avatar = mountStatic(element, info, info.image_url ? "image" : "placeholder");
  showWhy(element, why);
  element.dataset.avatar = avatar.kind;
  const destroy = avatar.destroy;
  avatar.destroy = () => {
    destroy();
    element.replaceChildren();
    delete element.dataset.avatar;
    delete element.dataset.expression;
    delete element.dataset.picture;
    element.zishuAvatar = null;
  };
  element.zishuAvatar = avatar;
  return avatar;
}

// -- lip-sync ---------------------------------------------------------------------------------------

export const MOUTH_GATE = 0.015; // RMS below this is silence (room noise, the tail of a word)
export const MOUTH_FULL = 0.2; // RMS at which the mouth is fully open
const ATTACK = 0.6; // how far the level moves towards a louder target each frame
const RELEASE = 0.3; // ... towards a quieter one (the mouth closes a little slower than it opens)

const mouthState = new WeakMap();

/** The mouth opening (0..1) for the sound now in ``analyser`` (an AnalyserNode on the voice being
 * played): its time-domain RMS through a noise gate, scaled, and smoothed across calls. Call it
 * once per animation frame (~16-20 ms) and pass the result to ``avatar.mouth``. */
export function mouthLevel(analyser) {
  let state = mouthState.get(analyser);
  if (!state || state.samples.length !== analyser.fftSize) {
    state = { samples: new Float32Array(analyser.fftSize), level: state ? state.level : 0 };
    mouthState.set(analyser, state);
  }
  analyser.getFloatTimeDomainData(state.samples);
  let sum = 0;
  for (let i = 0; i < state.samples.length; i += 1) sum += state.samples[i] * state.samples[i];
  const rms = Math.sqrt(sum / (state.samples.length || 1));
  const target = rms <= MOUTH_GATE ? 0 : Math.min(1, (rms - MOUTH_GATE) / (MOUTH_FULL - MOUTH_GATE));
  state.level += (target - state.level) * (target > state.level ? ATTACK : RELEASE);
  if (state.level < 0.01) state.level = 0;
  return state.level;
}
