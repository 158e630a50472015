// The QR as a picture. The platform sends either a data: URL, shown as it is, or the raw pairing
// string, which needs a QR encoder: the qrcode package's browser build when it is installed (the
// stack serves it from node_modules). Without it the string is shown as text, never drawn by a
// home-made encoder.

let encoder;

function loadEncoder() {
  encoder ??= new Promise((resolve) => {
    if (globalThis.QRCode?.toDataURL) return resolve(globalThis.QRCode);
    const script = document.createElement("script");
    script.src = "./vendor/qrcode.js";
    script.onload = () => resolve(globalThis.QRCode?.toDataURL ? globalThis.QRCode : null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
  return encoder;
}

function image(src, alt) {
  const img = document.createElement("img");
  img.id = "qr-image";
  img.src = src;
  img.alt = alt;
  img.width = 240;
  img.height = 240;
  return img;
}

/** Fills `box` with the QR; resolves to how it was shown: "image" or "text". */
export async function renderQr(box, qr) {
  const alt = "QR-код для WhatsApp / WhatsApp QR code";
  if (qr.startsWith("data:image/")) {
    const img = image(qr, alt);
    img.onerror = () => {
      box.closest("figure").dataset.rendered = "unreadable";
      img.replaceWith(
        rawText(
          qr,
          "Платформа прислала изображение, которое не открывается.",
          "The platform sent an image that cannot be decoded.",
        ),
      );
    };
    box.replaceChildren(img);
    return "image";
  }
  const qrcode = await loadEncoder();
  if (qrcode) {
    const src = await qrcode.toDataURL(qr, { width: 240, margin: 1, errorCorrectionLevel: "L" });
    box.replaceChildren(image(src, alt));
    return "image";
  }
  box.replaceChildren(
    rawText(
      qr,
      "Нет библиотеки для отрисовки QR-кода (npm-пакет qrcode). Строка привязки:",
      "No QR drawing library installed (npm package qrcode). Pairing string:",
    ),
  );
  return "text";
}

function rawText(qr, ru, en) {
  const wrap = document.createElement("div");
  wrap.id = "qr-raw";
  wrap.className = "qr-raw";
  const note = document.createElement("p");
  note.textContent = ru;
  const noteEn = document.createElement("p");
  noteEn.className = "en";
  noteEn.textContent = en;
  const code = document.createElement("code");
  code.textContent = qr.length > 300 ? `${qr.slice(0, 300)}…` : qr;
  wrap.append(note, noteEn, code);
  return wrap;
}
