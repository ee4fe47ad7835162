// The kiosk UI renders the view the Rust flow sends (`view` events) and turns touches into
// commands. It holds no decision and never sees a score.
"use strict";
const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

let view = null;
let operatorOpen = false;
const $ = (id) => document.getElementById(id);

function t(key) {
  const lang = (view && view.language) || "fr";
  return (window.I18N[lang] && window.I18N[lang][key]) || window.I18N.en[key] || key;
}

function applyLanguage(lang) {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
  // Only what changed: replacing a button's text under a finger can swallow the touch.
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    const text = t(el.dataset.i18n);
    if (el.textContent !== text) el.textContent = text;
  });
  document.querySelectorAll(".lang").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
}

function show(id) {
  document.querySelectorAll(".screen").forEach((s) => { s.hidden = s.id !== id; });
  document.body.dataset.screen = id.replace("screen-", "");
}

function render() {
  if (!view) return;
  applyLanguage(view.language);
  const note = $("note");
  note.hidden = !view.note;
  note.textContent = view.note ? t(view.note) : "";
  const cam = view.camera;
  $("camera-state").textContent =
    cam.state === "no_camera" ? t("no_camera") : cam.state === "busy" ? t("camera_busy") : cam.state === "starting" ? t("starting")
      : cam.state === "refused" ? `${t("camera_refused")}: ${cam.detail}` : "";
  $("camera-state").dataset.state = cam.state;
  $("demo-start").hidden = view.note !== "demo";
  $("speech").setAttribute("aria-pressed", String(!!view.speech));
  if (operatorOpen) return show("screen-operator");
  const s = view.screen;
  document.body.dataset.flow = s.flow || "";
  switch (s.screen) {
    case "start": return show("screen-start");
    case "claim": return show("screen-claim");
    case "card_scan":
      $("camera-title").textContent = t("card_title");
      setInstruction(s.hint);
      $("guide").className = "guide-card";
      $("guide").removeAttribute("style");
      $("progress-bar").style.width = "0%";
      $("step").hidden = true;
      $("retry").hidden = true;
      $("no-zone").hidden = !["turn_card", "hold_zone_still"].includes(s.hint);
      return show("screen-camera");
    case "selfie":
      $("no-zone").hidden = true;
      show("screen-camera");
      return renderSelfie(s);
    case "details": {
      const err = $("details-error");
      err.hidden = !s.error;
      err.textContent = s.error ? t("r_" + s.error) : "";
      // Filled once on arrival (read from the card, or empty): never over the person's typing.
      if (document.body.dataset.screen !== "details") {
        $("details-id").value = s.prefill ? s.prefill.id : "";
        $("details-name").value = s.prefill ? s.prefill.name : "";
      }
      $("details-from-card").hidden = !s.prefill;
      // The card's front disagreeing with its back: said, not resolved.
      const mismatch = (s.prefill && s.prefill.mismatch) || [];
      $("details-mismatch").hidden = mismatch.length === 0;
      $("details-mismatch").textContent = mismatch.length === 0 ? ""
        : t("front_mismatch").replace("{fields}", mismatch.map((f) => t("field_" + f)).join(view.language === "ar" ? "، " : ", "));
      return show("screen-details");
    }
    case "result": return renderResult(s.outcome);
  }
}

// The instruction under the camera: a correction, the oval's request, or the all-clear.
// Spoken when it changes (a step's sentence is spoken instead while a step runs).
function setInstruction(key) {
  const el = $("instruction");
  const text = t(key);
  if (el.dataset.key !== key || el.textContent !== text) {
    el.textContent = text;
    el.dataset.key = key;
  }
}

let spoken = "";
function say(text) {
  if (!view || !view.speech || !text || text === spoken) return;
  spoken = text;
  invoke("speak", { text, language: view.language }).catch(() => {});
}

// The selfie stage: the oval where the face must go (placed and sized by the flow, in
// thousandths of the camera frame, mirrored like the preview), then each challenge step as a
// pictogram, a sentence and its own progress, with corrections underneath.
function renderSelfie(s) {
  $("camera-title").textContent = t("selfie_title");
  placeOval(s.oval);
  const filled = s.step || s.progress > 0 || s.guidance === "good";
  $("guide").className = "guide-face " + (filled ? "ok" : "");
  $("retry").hidden = !s.retry || !!s.step;
  $("progress-bar").style.width = s.progress + "%";
  const step = $("step");
  if (s.step) {
    step.hidden = false;
    step.dataset.step = s.step.step;
    step.dataset.number = String(s.step.number);
    $("picto").setAttribute("class", "picto " + s.step.step);
    $("step-count").textContent = t("step_of").replace("{n}", s.step.number).replace("{of}", s.step.of);
    const text = t("step_" + s.step.step);
    $("step-text").textContent = text;
    $("step-bar").style.width = s.step.percent + "%";
    setInstruction(s.guidance === "good" ? "keep_going" : s.guidance);
    say(s.guidance === "good" || s.guidance === "face_the_camera" ? text : t(s.guidance));
  } else {
    step.hidden = true;
    step.dataset.step = "";
    const key = s.progress >= 100 ? (s.guidance === "good" ? "checking" : s.guidance)
      : s.retry && s.guidance === "look_at_camera" ? "new_challenge" : s.guidance === "good" ? "hold_oval" : s.guidance === "look_at_camera" ? "fill_oval" : s.guidance;
    setInstruction(key);
    say(t(key));
  }
}

let lastOval = null;
function placeOval(oval) {
  lastOval = oval;
  const guide = $("guide");
  const img = $("preview");
  const stage = guide.parentElement;
  const W = stage.clientWidth, H = stage.clientHeight;
  const w = img.naturalWidth || 640, h = img.naturalHeight || 480;
  // The preview covers the stage (object-fit: cover), mirrored.
  const scale = Math.max(W / w, H / h);
  const ox = (W - w * scale) / 2, oy = (H - h * scale) / 2;
  guide.style.left = `${ox + (1 - oval.cx / 1000) * w * scale}px`;
  guide.style.top = `${oy + (oval.cy / 1000) * h * scale}px`;
  guide.style.width = `${(oval.width / 1000) * w * scale}px`;
  guide.style.height = `${(oval.height / 1000) * h * scale}px`;
  guide.dataset.oval = `${oval.cx},${oval.cy},${oval.width},${oval.height}`;
}

function renderResult(o) {
  say(t(o.outcome));
  const good = ["enrolled", "verified", "identified"].includes(o.outcome);
  $("result-icon").className = good ? "ok" : "ko";
  $("result-icon").textContent = good ? "✓" : "!";
  $("result-title").textContent = t(o.outcome);
  $("result-title").dataset.outcome = o.outcome;
  $("result-text").textContent = o.name ? o.name : o.reason ? t("r_" + o.reason) : "";
  $("result-text").dataset.reason = o.reason || "";
  $("result-fallback").hidden = good;
  show("screen-result");
}

async function refreshOperator() {
  try {
    const form = await invoke("settings");
    const f = $("settings-form");
    for (const k of ["turn_left", "turn_right", "look_up", "blink", "come_closer"]) {
      f.elements["step_" + k].checked = form.challenge_steps.includes(k);
    }
    for (const [k, v] of Object.entries(form)) {
      if (k === "challenge_steps") continue;
      const input = f.elements[k];
      if (!input) continue;
      if (input.type === "checkbox") input.checked = v; else input.value = v;
    }
    const list = $("subject-list");
    list.textContent = "";
    for (const s of await invoke("subjects")) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = s.name ? `${s.name} (${s.id})` : s.id;
      const del = document.createElement("button");
      del.textContent = t("delete");
      del.dataset.subject = s.id;
      del.addEventListener("click", async () => {
        if (del.dataset.confirm === "1") { await invoke("delete_subject", { id: s.id }); refreshOperator(); }
        else { del.dataset.confirm = "1"; del.textContent = t("confirm_delete"); }
      });
      li.append(label, del);
      list.append(li);
    }
    renderSync(await invoke("sync_status"));
    $("operator-pin").hidden = true;
    $("operator-panel").hidden = false;
  } catch (e) {
    $("operator-pin").hidden = false;
    $("operator-panel").hidden = true;
  }
}

// Sync state as the operator reads it: server, pending events, last push and pull, the last
// error, and each enrollment the server refused (same id, different person).
function renderSync(sync) {
  const when = (ms) => (ms ? new Date(ms).toLocaleString(document.documentElement.lang) : t("never"));
  const s = sync.status;
  const lines = sync.server
    ? [`${t("sync_server")}: ${sync.server}`, `${t("sync_pending")}: ${s.pending}`,
       `${t("sync_last_push")}: ${when(s.last_push_ms)}`, `${t("sync_last_pull")}: ${when(s.last_pull_ms)}`]
    : [t("sync_off"), `${t("sync_pending")}: ${s.pending}`];
  if (s.last_error) lines.push(`${t("sync_error")}: ${s.last_error}`);
  $("sync-state").textContent = lines.join(" · ");
  const list = $("conflict-list");
  list.textContent = "";
  for (const c of sync.conflicts) {
    const li = document.createElement("li");
    li.className = "conflict";
    const label = document.createElement("span");
    label.textContent = `${t("sync_conflict")} ${c.subject || ""}: ${c.message}`;
    const id = document.createElement("input");
    id.placeholder = t("conflict_new_id");
    id.setAttribute("aria-label", t("conflict_new_id"));
    const reenroll = document.createElement("button");
    reenroll.textContent = t("conflict_reenroll");
    reenroll.dataset.action = "reenroll";
    reenroll.addEventListener("click", async () => {
      if (!id.value.trim()) { id.focus(); return; }
      try { await invoke("resolve_conflict", { eventId: c.event_id, newId: id.value }); refreshOperator(); }
      catch (e) { label.textContent = `${t("sync_conflict")} ${c.subject || ""}: ${(e && e.message) || String(e)}`; }
    });
    const discard = document.createElement("button");
    discard.textContent = t("conflict_discard");
    discard.dataset.action = "discard";
    discard.addEventListener("click", async () => {
      if (discard.dataset.confirm === "1") { await invoke("resolve_conflict", { eventId: c.event_id, newId: null }); refreshOperator(); }
      else { discard.dataset.confirm = "1"; discard.textContent = t("confirm_delete"); }
    });
    li.append(label, id, reenroll, discard);
    list.append(li);
  }
}

function wire() {
  $("go-enroll").onclick = () => invoke("start_flow", { flow: "enroll" });
  $("go-verify").onclick = () => invoke("start_flow", { flow: "verify" });
  $("go-identify").onclick = () => invoke("start_flow", { flow: "identify" });
  document.querySelectorAll(".lang").forEach((b) => { b.onclick = () => invoke("set_language", { language: b.dataset.lang }); });
  document.querySelectorAll(".cancel").forEach((b) => { b.onclick = () => invoke("cancel"); });
  $("speech").onclick = () => { spoken = ""; invoke("set_speech", { on: !(view && view.speech) }); };
  $("no-zone").onclick = () => invoke("skip_card_back");
  $("claim-go").onclick = () => invoke("claim", { id: $("claim-id").value });
  $("details-go").onclick = () => invoke("confirm_details", { id: $("details-id").value, name: $("details-name").value });
  $("go-operator").onclick = () => { operatorOpen = true; $("pin").value = ""; refreshOperator(); render(); };
  $("operator-back").onclick = () => { operatorOpen = false; render(); };
  $("pin-go").onclick = async () => {
    const ok = await invoke("operator_unlock", { pin: $("pin").value });
    $("pin-error").hidden = ok;
    if (ok) refreshOperator();
  };
  $("operator-out").onclick = async () => { await invoke("operator_lock"); operatorOpen = false; render(); };
  $("settings-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const steps = ["turn_left", "turn_right", "look_up", "blink", "come_closer"].filter((k) => f["step_" + k].checked);
    const form = {
      camera: f.camera.value, card_source: f.card_source.value, liveness_preset: f.liveness_preset.value,
      language: f.language.value, server_url: f.server_url.value, retain_images: f.retain_images.checked,
      challenge_steps: steps, challenge_length: Number(f.challenge_length.value), spoken_prompts: f.spoken_prompts.checked,
      camera_id: f.camera_id.value, new_pin: f.new_pin.value,
    };
    try { await invoke("save_settings", { form }); $("settings-status").textContent = t("saved"); }
    catch (e) { $("settings-status").textContent = e.message || e.error || String(e); }
  };
  document.addEventListener("pointerdown", () => invoke("touch"), { passive: true });
  document.addEventListener("keydown", () => invoke("touch"), { passive: true });
}

// Preview frames are pulled: the next is asked for only once this one is decoded, so a busy
// screen shows fewer frames instead of queueing them.
let lastFrame = 0;
async function pumpPreview() {
  try {
    const frame = await invoke("preview", { after: lastFrame });
    if (frame) {
      lastFrame = frame.seq;
      const img = $("preview");
      img.src = frame.jpeg;
      await img.decode().catch(() => {});
      // The oval follows the frame's size (known once the first frame is decoded).
      if (lastOval && document.body.dataset.screen === "camera" && $("guide").classList.contains("guide-face")) placeOval(lastOval);
    } else {
      await new Promise((r) => setTimeout(r, 15));
    }
  } catch (e) {
    await new Promise((r) => setTimeout(r, 200));
  }
  requestAnimationFrame(pumpPreview);
}

async function main() {
  wire();
  await listen("view", (e) => { view = e.payload; render(); });
  pumpPreview();
  view = await invoke("view");
  render();
}
main();
