/* AURA's admin helpers, both admins: copy buttons, and the assistant form's provider-bound choices
   (models and voices narrowed to what the chosen provider offers; the server checks them again). */
(function () {
  "use strict";

  function say(element, text) {
    if (element) element.textContent = text;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest(".aura-copy");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector(".aura-copy-status");
    copyText(source.textContent.trim()).then(
      function () { say(status, "Copied."); button.textContent = "Copied"; },
      function () { say(status, "Select the text and copy it with Ctrl+C."); }
    );
  });

  function setupAssistantForm() {
    const data = document.getElementById("aura-offerings");
    if (!data) return;
    const offerings = JSON.parse(data.textContent);
    const pairs = { chat: ["id_llm_provider", "id_llm_model"], stt: ["id_stt_provider", "id_stt_model"], tts: ["id_tts_provider", "id_tts_model"] };

    function models(capability) {
      const provider = document.getElementById(pairs[capability][0]);
      return (provider && offerings.models[capability][provider.value]) || [];
    }

    function fillModels(capability, pickFirst) {
      const input = document.getElementById(pairs[capability][1]);
      if (!input) return;
      let list = document.getElementById("aura-models-" + capability);
      if (!list) {
        list = document.createElement("datalist");
        list.id = "aura-models-" + capability;
        input.after(list);
      }
      const offered = models(capability);
      list.replaceChildren.apply(list, offered.map(function (name) { const o = document.createElement("option"); o.value = name; return o; }));
      if (pickFirst && offered.length && offered.indexOf(input.value) < 0) input.value = offered[0];
    }

    function fillVoices() {
      const provider = document.getElementById("id_tts_provider");
      const select = document.getElementById("id_voice");
      if (!provider || !select) return;
      const voices = offerings.voices[provider.value] || [];
      const current = select.value;
      select.replaceChildren.apply(select, voices.map(function (pair) { return new Option(pair[1], pair[0]); }));
      const names = voices.map(function (pair) { return pair[0]; });
      select.value = names.indexOf(current) >= 0 ? current : (names[0] || "");
    }

    Object.keys(pairs).forEach(function (capability) {
      fillModels(capability, false);
      const provider = document.getElementById(pairs[capability][0]);
      if (provider) provider.addEventListener("change", function () {
        fillModels(capability, true);
        if (capability === "tts") fillVoices();
      });
    });
    fillVoices();

    document.querySelectorAll(".aura-voice-sample").forEach(function (button) {
      const status = button.parentElement.querySelector(".aura-voice-sample-status");
      button.addEventListener("click", function () {
        const field = function (id) { const e = document.getElementById(id); return e ? e.value : ""; };
        const query = new URLSearchParams({
          provider: field("id_tts_provider"), model: field("id_tts_model"), voice: field("id_voice"),
          speed: field("id_speech_speed") || "1", base_url: field("id_openai_compatible_base_url"),
        });
        say(status, "Preparing the sample…");
        button.disabled = true;
        fetch(button.dataset.url + "?" + query, { credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) return response.text().then(function (text) { throw new Error(text); });
            return response.blob();
          })
          .then(function (blob) {
            const audio = new Audio(URL.createObjectURL(blob));
            audio.addEventListener("ended", function () { say(status, "Played."); });
            return audio.play().then(function () { say(status, "Playing…"); });
          })
          .catch(function (error) { say(status, error.message || "The sample could not be played."); })
          .finally(function () { button.disabled = false; });
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setupAssistantForm);
  else setupAssistantForm();
})();
