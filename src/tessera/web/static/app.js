// Tessera's page: plain JavaScript over the REST API (/docs). No external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  file: null,          // the File the user picked (sent as is)
  video: false,        // the file is a video: it runs as a job, its mask holds in every frame
  job: null,           // the id of the job running now (for Cancel)
  width: 0, height: 0,
  tool: "brush",
  size: 24,
  undo: [],            // ImageData snapshots of the mask before each edit
  painting: false,
  last: null,
  busy: false,
  urls: [],            // object URLs to revoke when replaced
  notice: "",
  samplings: {},       // sampling name -> what it takes of a cell and which tools make it (GET /api/info)
};
const MASK_RGBA = [230, 40, 40, 255];
const UNDO_LIMIT = 30;

const imageCanvas = $("image-canvas");
const maskCanvas = $("mask-canvas");
const boxCanvas = $("box-canvas");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });

// ------------------------------------------------------------------ helpers

function showError(msg) { $("error").textContent = msg || ""; }

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

function action() { return document.querySelector('input[name="action"]:checked').value; }

function setProgress(fraction, text) {
  $("progress").hidden = false;
  $("progress-bar").style.width = `${Math.round(100 * fraction)}%`;
  $("progress-text").textContent = text;
}

function keepUrl(url) { state.urls.push(url); return url; }

function revokeUrls() { state.urls.forEach((u) => URL.revokeObjectURL(u)); state.urls = []; }

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// ------------------------------------------------------------------ server info

async function loadInfo() {
  const r = await fetch("/api/info");
  if (!r.ok) { showError(await errorOf(r)); return; }
  const info = await r.json();
  state.notice = info.notice;
  state.videoOk = info.actions.video;
  const select = $("model");
  select.innerHTML = "";
  for (const name of info.models) {
    const opt = document.createElement("option");
    opt.value = name;
    opt.textContent = name === "default" ? `default (${info.default_is})` : name;
    select.appendChild(opt);
  }
  state.samplings = info.samplings || {};
  fillSamplings();
  const anon = document.querySelector('input[value="anonymize"]');
  anon.disabled = !info.actions.anonymize;
  $("anonymize-label").title = info.actions.anonymize ? "find faces and text and hide them" : "not available in this installation";
  $("anonymize-label").classList.toggle("off", !info.actions.anonymize);
}

// the sampling choices of the action: restore may leave it to the server (auto), pixelate names one
function fillSamplings() {
  const act = action();
  const select = $("sampling");
  const names = (act === "restore" ? ["auto"] : []).concat(Object.keys(state.samplings || {}));
  select.innerHTML = "";
  for (const name of names) {
    const opt = document.createElement("option");
    opt.value = name;
    opt.textContent = name;
    opt.title = name === "auto" ? "try mean and centre, keep the one the restoration agrees with" : state.samplings[name];
    select.appendChild(opt);
  }
  $("sampling-row").hidden = (act !== "restore" && act !== "mosaic") || names.length === 0;
}

// ------------------------------------------------------------------ loading an image or a video

const VIDEO_NAME = /\.(mp4|m4v|mov|mkv|webm|avi|ts|mts|m2ts|mpg|mpeg|flv|3gp|wmv)$/i;

function isVideo(file) { return file.type.startsWith("video/") || VIDEO_NAME.test(file.name); }

// A video's first frame, as a <video> element ready to draw; null when this browser cannot decode it.
function firstFrame(file) {
  return new Promise((resolve) => {
    const v = document.createElement("video");
    const url = URL.createObjectURL(file);
    const done = (ok) => { clearTimeout(timer); URL.revokeObjectURL(url); resolve(ok ? v : null); };
    const timer = setTimeout(() => done(false), 10000);
    v.muted = true;
    v.preload = "auto";
    v.onloadeddata = () => done(v.videoWidth > 0);
    v.onerror = () => done(false);
    v.src = url;
  });
}

async function loadFile(file) {
  showError("");
  if (!file) return;
  const video = isVideo(file);
  if (!video && !file.type.startsWith("image/") && file.type !== "") { showError(`${file.name}: not an image or a video`); return; }
  if (video && !state.videoOk) { showError(`${file.name}: this server cannot read videos (PyAV, the video extra, is not installed)`); return; }
  let picture = null;
  if (video) {
    picture = await firstFrame(file);  // the server reads what the browser cannot show: no preview then
  } else {
    try {
      picture = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      showError(`${file.name}: this browser cannot show it (${e.message})`);
      return;
    }
  }
  state.file = file;
  state.video = video;
  state.width = picture ? (picture.videoWidth || picture.width) : 0;
  state.height = picture ? (picture.videoHeight || picture.height) : 0;
  for (const c of [imageCanvas, maskCanvas, boxCanvas]) { c.width = state.width; c.height = state.height; }
  if (picture) imageCanvas.getContext("2d").drawImage(picture, 0, 0, state.width, state.height);
  if (picture && picture.close) picture.close();
  state.undo = [];
  clearBoxes();
  maskCtx.clearRect(0, 0, state.width, state.height);
  $("stage").hidden = !picture;
  $("placeholder").hidden = !!picture;
  $("result").hidden = true;
  $("downloads").hidden = true;
  $("progress").hidden = true;
  $("detect").disabled = video;
  $("file-info").textContent = `${file.name}: ` + (video ? (picture ? `video, ${state.width}×${state.height}` : "video (no preview in this browser)") : `${state.width}×${state.height}`);
  if (video) {
    $("regions-info").textContent = "video: restore finds and tracks the mosaics in every frame; a painted mask holds in every frame instead.";
    return;
  }
  await detect();
}

// ------------------------------------------------------------------ detection

function clearBoxes() { boxCanvas.getContext("2d").clearRect(0, 0, boxCanvas.width, boxCanvas.height); }

function drawBoxes(regions) {
  const ctx = boxCanvas.getContext("2d");
  clearBoxes();
  const lw = Math.max(2, Math.round(state.width / 400));
  ctx.lineWidth = lw;
  ctx.font = `${Math.max(12, 6 * lw)}px system-ui, sans-serif`;
  for (const r of regions) {
    const [x, y, w, h] = r.box;
    ctx.strokeStyle = "#ffd400";
    ctx.strokeRect(x + lw / 2, y + lw / 2, w - lw, h - lw);
    const label = r.cell ? `${r.kind} ${r.cell[0]}×${r.cell[1]} px` : r.kind;
    ctx.fillStyle = "rgba(0,0,0,0.6)";
    const tw = ctx.measureText(label).width + 6;
    const th = Math.max(12, 6 * lw) + 4;
    ctx.fillRect(x, Math.max(0, y - th), tw, th);
    ctx.fillStyle = "#ffd400";
    ctx.fillText(label, x + 3, Math.max(0, y - th) + th - 4);
  }
}

async function detect() {
  if (!state.file || state.busy || state.video) return;
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("with_mask", "true");
  $("regions-info").textContent = "detecting mosaics…";
  const r = await fetch("/api/detect", { method: "POST", body: form });
  if (!r.ok) { $("regions-info").textContent = ""; showError(await errorOf(r)); return; }
  const doc = await r.json();
  pushUndo();
  maskCtx.clearRect(0, 0, state.width, state.height);
  if (doc.mask) await paintMaskImage(doc.mask);
  drawBoxes(doc.regions);
  $("regions-info").textContent = doc.regions.length
    ? `${doc.regions.length} mosaic region(s) found; edit the mask as you like.`
    : "no mosaic found: paint what to restore or hide.";
}

// A white-on-black mask image (data URL) -> red pixels on the mask canvas.
async function paintMaskImage(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  const tmp = document.createElement("canvas");
  tmp.width = state.width; tmp.height = state.height;
  const t = tmp.getContext("2d");
  t.drawImage(img, 0, 0);
  const src = t.getImageData(0, 0, state.width, state.height).data;
  const out = maskCtx.getImageData(0, 0, state.width, state.height);
  for (let i = 0; i < src.length; i += 4) {
    if (src[i] > 127) out.data.set(MASK_RGBA, i);
  }
  maskCtx.putImageData(out, 0, 0);
}

// ------------------------------------------------------------------ mask editing

function pushUndo() {
  if (!state.width) return;
  state.undo.push(maskCtx.getImageData(0, 0, state.width, state.height));
  if (state.undo.length > UNDO_LIMIT) state.undo.shift();
}

function undo() {
  const snap = state.undo.pop();
  if (snap) maskCtx.putImageData(snap, 0, 0);
}

function clearMask() { pushUndo(); maskCtx.clearRect(0, 0, state.width, state.height); clearBoxes(); }

function toImage(ev) {
  const rect = maskCanvas.getBoundingClientRect();
  return { x: (ev.clientX - rect.left) * (state.width / rect.width), y: (ev.clientY - rect.top) * (state.height / rect.height) };
}

function stroke(from, to) {
  const scale = state.width / maskCanvas.getBoundingClientRect().width;
  maskCtx.save();
  maskCtx.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
  maskCtx.strokeStyle = maskCtx.fillStyle = `rgba(${MASK_RGBA.join(",")})`;
  maskCtx.lineWidth = state.size * scale;
  maskCtx.lineCap = maskCtx.lineJoin = "round";
  maskCtx.beginPath();
  maskCtx.moveTo(from.x, from.y);
  maskCtx.lineTo(to.x + 0.01, to.y);
  maskCtx.stroke();
  maskCtx.restore();
}

maskCanvas.addEventListener("pointerdown", (ev) => {
  if (!state.width || ev.button !== 0) return;
  maskCanvas.setPointerCapture(ev.pointerId);
  pushUndo();
  state.painting = true;
  state.last = toImage(ev);
  stroke(state.last, state.last);
});
maskCanvas.addEventListener("pointermove", (ev) => {
  if (!state.painting) return;
  const p = toImage(ev);
  stroke(state.last, p);
  state.last = p;
});
for (const name of ["pointerup", "pointercancel"]) {
  maskCanvas.addEventListener(name, () => { state.painting = false; state.last = null; });
}

// The mask as the API wants it: a PNG, white = selected, the image's size. null when empty.
async function maskBlob() {
  if (!state.width) return null;
  const src = maskCtx.getImageData(0, 0, state.width, state.height);
  const out = new ImageData(state.width, state.height);
  let any = false;
  for (let i = 0; i < src.data.length; i += 4) {
    const on = src.data[i + 3] > 127;
    any = any || on;
    const v = on ? 255 : 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  if (!any) return null;
  const tmp = document.createElement("canvas");
  tmp.width = state.width; tmp.height = state.height;
  tmp.getContext("2d").putImageData(out, 0, 0);
  return await new Promise((resolve) => tmp.toBlob(resolve, "image/png"));
}

function setTool(tool) {
  state.tool = tool;
  $("tool-brush").classList.toggle("active", tool === "brush");
  $("tool-eraser").classList.toggle("active", tool === "eraser");
}

function setSize(size) {
  state.size = Math.max(2, Math.min(120, size));
  $("brush-size").value = state.size;
  $("brush-size-value").textContent = state.size;
}

// ------------------------------------------------------------------ running work as a job

async function run() {
  if (!state.file || state.busy) { if (!state.file) showError("pick an image or a video first"); return; }
  showError("");
  const act = action();
  const mask = await maskBlob();
  const form = new FormData();
  form.append(state.video ? "video" : "image", state.file, state.file.name);
  if (state.video) form.append("with_mask", "true");  // the mask video too
  if (mask) form.append("mask", mask, "mask.png");
  const cell = $("cell").value.trim();
  if (act === "restore") {
    form.append("task", "restore");
    form.append("model", $("model").value);
    if (cell) form.append("cell", cell);
    if ($("sampling").value) form.append("sampling", $("sampling").value);
  } else if (act === "anonymize") {
    form.delete("mask");  // the finders decide what to hide
    form.append("task", "anonymize");
    form.append("find", "faces,text");
    form.append("method", "blur");  // the library default
    form.append("cell", cell || "auto");
  } else {
    if (!mask) { showError("paint the region to hide first"); return; }
    form.append("task", "pixelate");
    form.append("method", act);
    form.append("cell", cell || "12");
    form.append("sigma", $("sigma").value);
    if (act === "mosaic" && $("sampling").value) form.append("sampling", $("sampling").value);
  }
  state.busy = true;
  $("run").disabled = true;
  setProgress(0, "sending…");
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    if (!r.ok) {
      const retry = r.headers.get("Retry-After");
      throw new Error((await errorOf(r)) + (retry ? ` (retry in ${retry} s)` : ""));
    }
    const { id } = await r.json();
    state.job = id;
    $("cancel").hidden = false;
    const job = await follow(id);
    $("cancel").hidden = true;
    await (state.video ? showVideoResult(job, act) : showResult(job, act));
    fetch(`/api/jobs/${id}`, { method: "DELETE" });  // its files are ours now
  } catch (e) {
    showError(e.message);
    $("progress").hidden = true;
  } finally {
    state.busy = false;
    state.job = null;
    $("cancel").hidden = true;
    $("run").disabled = false;
  }
}

// Stop the running job: the server stops at the next frame and deletes its files.
async function cancel() {
  const id = state.job;
  if (!id) return;
  state.job = null;
  setProgress(0, "cancelling…");
  await fetch(`/api/jobs/${id}`, { method: "DELETE" });
}

async function follow(id) {
  for (;;) {
    const r = await fetch(`/api/jobs/${id}`);
    if (r.status === 404 && state.job !== id) throw new Error("the job was cancelled");
    if (!r.ok) throw new Error(await errorOf(r));
    const job = await r.json();
    const eta = job.eta_s != null ? `, about ${Math.ceil(job.eta_s)} s left` : "";
    setProgress(job.progress, `${job.status}${job.stage ? ": " + job.stage : ""} ${Math.round(100 * job.progress)}%${eta}`);
    if (job.status === "done") return job;
    if (job.status === "failed") throw new Error(job.error || "the job failed");
    if (job.status === "cancelled") throw new Error("the job was cancelled");
    await sleep(200);
  }
}

async function fetchBlob(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(await errorOf(r));
  return await r.blob();
}

async function showResult(job, act) {
  const [result, mask] = await Promise.all([fetchBlob(job.outputs.result), fetchBlob(job.outputs.mask)]);
  revokeUrls();
  const before = keepUrl(URL.createObjectURL(await new Promise((res) => imageCanvas.toBlob(res, "image/png"))));
  const after = keepUrl(URL.createObjectURL(result));
  $("compare").hidden = false;
  $("slider").hidden = false;
  $("after-video").hidden = true;
  $("download-mask").hidden = false;
  const afterImg = $("after");
  afterImg.dataset.ready = "";
  $("before").src = before;
  afterImg.src = after;
  await afterImg.decode();
  afterImg.dataset.ready = "1";
  const info = job.info || {};
  const isRestore = act === "restore";
  $("result-notice").hidden = !isRestore;
  $("result-notice").textContent = isRestore
    ? `${info.notice || state.notice} The ${info.synthesized_pixels} synthesized pixels are marked in ${info.mask_name}, which the PNG names.`
    : "";
  $("result-info").textContent = isRestore
    ? `model ${info.model}, ${info.regions.length} region(s)` + (info.residual != null ? `, re-mosaic residual ${info.residual}` : "")
    : act === "anonymize"
      ? `${info.found.length} face/text region(s) found, ${info.hidden_pixels} pixels hidden. ${info.warning}`
      : `${info.method}: ${info.changed_pixels} pixels changed`;
  const dr = $("download-result"), dm = $("download-mask");
  dr.href = after; dr.download = info.result_name || "result.png";
  dm.href = keepUrl(URL.createObjectURL(mask)); dm.download = info.mask_name || "mask.png";
  dr.textContent = `result (${dr.download})`; dm.textContent = `mask (${dm.download})`;
  $("downloads").hidden = false;
  $("result").hidden = false;
  setProgress(1, "done");
  setSlider(50);
}

async function showVideoResult(job, act) {
  const result = await fetchBlob(job.outputs.result);
  const mask = job.outputs.mask ? await fetchBlob(job.outputs.mask) : null;
  revokeUrls();
  const info = job.info || {};
  const after = keepUrl(URL.createObjectURL(result));
  const player = $("after-video");
  player.dataset.ready = "";
  player.onloadeddata = () => { player.dataset.ready = "1"; };
  player.src = after;
  $("compare").hidden = true;
  $("slider").hidden = true;
  player.hidden = false;
  const isRestore = act === "restore";
  $("result-notice").hidden = !isRestore;
  $("result-notice").textContent = isRestore
    ? `${info.notice || state.notice} Every frame's restored pixels are marked in ${info.mask_name} (white imagined, grey recovered from other frames).`
    : "";
  $("result-info").textContent = `${info.frames} frames, ${info.frames_changed} of them changed` +
    (isRestore ? ` (model ${info.model})` : act === "anonymize" ? `; metadata ${info.metadata}. ${info.warning}` : ` (${info.method})`);
  const dr = $("download-result"), dm = $("download-mask");
  dr.href = after; dr.download = info.result_name || "result.mp4";
  dr.textContent = `result (${dr.download})`;
  dm.hidden = !mask;
  if (mask) {
    dm.href = keepUrl(URL.createObjectURL(mask)); dm.download = info.mask_name || "mask.mp4";
    dm.textContent = `mask (${dm.download})`;
  }
  $("downloads").hidden = false;
  $("result").hidden = false;
  setProgress(1, "done");
}

function setSlider(v) {
  $("slider").value = v;
  $("after").style.clipPath = `inset(0 0 0 ${v}%)`;
  $("divider").style.left = `${v}%`;
}

// ------------------------------------------------------------------ wiring

$("file").addEventListener("change", (ev) => loadFile(ev.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  if (ev.dataTransfer.files.length) loadFile(ev.dataTransfer.files[0]);
});
$("tool-brush").addEventListener("click", () => setTool("brush"));
$("tool-eraser").addEventListener("click", () => setTool("eraser"));
$("brush-size").addEventListener("input", (ev) => setSize(parseInt(ev.target.value, 10)));
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearMask);
$("detect").addEventListener("click", detect);
$("run").addEventListener("click", run);
$("cancel").addEventListener("click", cancel);
$("slider").addEventListener("input", (ev) => setSlider(ev.target.value));
for (const radio of document.querySelectorAll('input[name="action"]')) {
  radio.addEventListener("change", () => {
    const act = action();
    $("model-row").hidden = act !== "restore";
    $("sigma-row").hidden = act !== "blur";
    $("cell-row").hidden = act === "blur" || act === "solid";
    $("cell").placeholder = act === "restore" || act === "anonymize" ? "auto" : "12";
    fillSamplings();
  });
}
document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input[type=text], input[type=number], select")) return;
  const k = ev.key.toLowerCase();
  if ((ev.ctrlKey || ev.metaKey) && k === "z") { ev.preventDefault(); undo(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (k === "b") setTool("brush");
  else if (k === "e") setTool("eraser");
  else if (k === "[") setSize(state.size - 4);
  else if (k === "]") setSize(state.size + 4);
  else if (k === "c") clearMask();
  else if (k === "d") detect();
  else if (k === "r") run();
  else if (k === "z") undo();
});

loadInfo();
