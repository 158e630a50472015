// The QR as a picture. The platform sends either a data: URL, shown as it is, or the raw pairing
// string, which the stack draws as an SVG with the qrcode package (POST /demo/qr). If that fails,
// the string is shown as text, never drawn by a home-made encoder.

async function drawOnServer(apiUrl, qr) {
  try {
    const response = await fetch(`${apiUrl}/demo/qr`, { method: "POST", body: qr });
    if (!response.ok) return null;
    return URL.createObjectURL(await response.blob());
  } catch {
    return null;
  }
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

/**
 * Builds the QR's element without putting it anywhere, so a caller that drew a newer QR meanwhile
 * can drop an older one that finished late. Resolves to `{how: "image" | "text", element}`;
 * `release()` frees the picture once it is off screen.
 */
export async function buildQr(qr, apiUrl) {
  const alt = "QR-код для WhatsApp / WhatsApp QR code";
  if (qr.startsWith("data:image/")) {
    const img = image(qr, alt);
    img.onerror = () => {
      img.replaceWith(
        rawText(
          qr,
          "Платформа прислала изображение, которое не открывается.",
          "The platform sent an image that cannot be decoded.",
        ),
      );
    };
    return { how: "image", element: img, release: () => {} };
  }
  const src = await drawOnServer(apiUrl, qr);
  if (src) {
    return { how: "image", element: image(src, alt), release: () => URL.revokeObjectURL(src) };
  }
  return {
    how: "text",
    element: rawText(
      qr,
      "Не удалось нарисовать QR-код. Строка привязки:",
      "The QR code could not be drawn. Pairing string:",
    ),
    release: () => {},
  };
}
