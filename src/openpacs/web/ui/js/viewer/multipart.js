// Reading a multipart/related body (RFC 2387), the envelope of WADO-RS frames and bulk data
// (PS3.18 8.7.3). The body is split on the boundary bytes; parts stay views of one buffer.

const CRLF2 = [13, 10, 13, 10];

export function boundaryOf(contentType) {
  const match = /boundary\s*=\s*(?:"([^"]+)"|([^;,\s]+))/i.exec(contentType || "");
  return match ? match[1] || match[2] : null;
}

function indexOf(bytes, pattern, from) {
  const first = pattern[0];
  const last = bytes.length - pattern.length;
  outer: for (let i = bytes.indexOf(first, from); i !== -1 && i <= last; i = bytes.indexOf(first, i + 1)) {
    for (let j = 1; j < pattern.length; j += 1) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

function parseHeaders(text) {
  const headers = {};
  for (const line of text.split(/\r\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/**
 * The parts of a multipart body: [{headers: {lower-case name: value}, body: Uint8Array}].
 * A delimiter is CRLF "--" boundary (RFC 2046 5.1.1): the boundary text inside a body is data.
 */
export function parseMultipart(buffer, boundary) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const dashBoundary = new TextEncoder().encode(`--${boundary}`);
  const delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
  const startsWithBoundary = dashBoundary.every((byte, i) => bytes[i] === byte);
  let start = startsWithBoundary ? 0 : indexOf(bytes, delimiter, 0);
  if (start < 0) throw new Error("multipart body without its boundary");
  if (!startsWithBoundary) start += 2;
  const parts = [];
  const decoder = new TextDecoder("latin1");
  for (;;) {
    let cursor = start + dashBoundary.length;
    if (bytes[cursor] === 45 && bytes[cursor + 1] === 45) break; // "--": the close delimiter
    while (bytes[cursor] === 32 || bytes[cursor] === 9) cursor += 1; // transport padding
    if (bytes[cursor] === 13 && bytes[cursor + 1] === 10) cursor += 2;
    const next = indexOf(bytes, delimiter, cursor - 2);
    if (next < 0) throw new Error("multipart body ends inside a part");
    let headers = {};
    let bodyStart;
    if (bytes[cursor] === 13 && bytes[cursor + 1] === 10) {
      bodyStart = cursor + 2; // no headers: the blank line comes at once
    } else {
      const headerEnd = indexOf(bytes, CRLF2, cursor);
      if (headerEnd < 0 || headerEnd > next) throw new Error("multipart part without the blank line after its headers");
      headers = parseHeaders(decoder.decode(bytes.subarray(cursor, headerEnd)));
      bodyStart = headerEnd + 4;
    }
    parts.push({ headers, body: bytes.subarray(bodyStart, Math.max(bodyStart, next)) });
    start = next + 2;
  }
  return parts;
}

/** The payloads of a WADO-RS response: multipart parts, or a single body when not multipart. */
export async function responseParts(response) {
  const type = response.headers.get("Content-Type") || "";
  const buffer = await response.arrayBuffer();
  if (!/^multipart\//i.test(type)) return [{ headers: { "content-type": type }, body: new Uint8Array(buffer) }];
  const boundary = boundaryOf(type);
  if (!boundary) throw new Error("multipart response without a boundary");
  return parseMultipart(buffer, boundary);
}
