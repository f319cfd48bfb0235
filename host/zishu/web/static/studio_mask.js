// The Studio's mask painter: a canvas over a gallery picture where the user paints (white) what to
// redraw (shown in colour over it); the mask goes to the request as a black-and-white PNG data URL of the picture's own size.
import { $ } from "./app.js";

const dialog = $("mask-editor");
const canvas = $("mask-canvas", dialog);
const picture = $("mask-image", dialog);
const brush = $("mask-brush", dialog);
const paint = canvas.getContext("2d");
let painted = false;
let last = null;
let done = null;

brush.addEventListener("input", () => { $("mask-brush-shown", dialog).textContent = brush.value; });

/** Where a pointer event falls on the canvas, in the picture's pixels. */
function point(event) {
  const box = canvas.getBoundingClientRect();
  return { x: ((event.clientX - box.left) * canvas.width) / box.width,
    y: ((event.clientY - box.top) * canvas.height) / box.height };
}

/** The brush in picture pixels: the slider is in screen pixels, so a small preview paints alike. */
function brushSize() {
  const box = canvas.getBoundingClientRect();
  return (Number(brush.value) * canvas.width) / Math.max(1, box.width);
}

function stroke(from, to) {
  paint.strokeStyle = "#ff3d6e"; // shown over the picture; the mask itself is white on black
  paint.lineWidth = brushSize();
  paint.lineCap = "round";
  paint.lineJoin = "round";
  paint.beginPath();
  paint.moveTo(from.x, from.y);
  paint.lineTo(to.x, to.y);
  paint.stroke();
  painted = true;
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  last = point(event);
  stroke(last, last);
});
canvas.addEventListener("pointermove", (event) => {
  if (last === null) return;
  const now = point(event);
  stroke(last, now);
  last = now;
});
for (const end of ["pointerup", "pointercancel"]) canvas.addEventListener(end, () => { last = null; });

function clear() {
  paint.clearRect(0, 0, canvas.width, canvas.height);
  painted = false;
}
$("mask-clear", dialog).addEventListener("click", clear);
$("mask-close", dialog).addEventListener("click", () => dialog.close());

/** The painted strokes as a mask PNG (white: redraw, black: keep), or null when nothing is painted. */
export function maskDataUrl() {
  if (!painted) return null;
  const out = document.createElement("canvas");
  out.width = canvas.width;
  out.height = canvas.height;
  const ctx = out.getContext("2d");
  ctx.drawImage(canvas, 0, 0);
  ctx.globalCompositeOperation = "source-in"; // every painted pixel white
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.globalCompositeOperation = "destination-over"; // the rest black
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  return out.toDataURL("image/png");
}

$("mask-done", dialog).addEventListener("click", () => {
  dialog.close();
  if (done) done(maskDataUrl());
});

/** Open the painter over ``image`` (a gallery row); ``onDone(maskDataUrl or null)`` when the user is done.
 * The strokes are kept while the same picture is edited again. */
export function editMask(image, onDone) {
  done = onDone;
  if (canvas.dataset.image !== String(image.id)) {
    canvas.dataset.image = String(image.id);
    canvas.width = image.width;
    canvas.height = image.height;
    clear();
    picture.src = image.url;
    // the stage keeps the picture's shape and fits the window's height
    $("mask-stage", dialog).style.setProperty("--aspect", String(image.width / image.height));
  }
  dialog.showModal();
}

/** Forget the strokes (the form stopped drawing from that picture). */
export function forgetMask() {
  delete canvas.dataset.image;
  clear();
}
