/**
 * The AWS Query protocol as EC2 Auto Scaling speaks it: form-encoded requests (`Action=...&Version=
 * 2011-01-01&InstanceIds.member.1=i-...`) and XML responses where lists are `<member>` elements.
 * https://smithy.io/2.0/aws/protocols/aws-query-protocol.html
 */
export const AUTO_SCALING_NAMESPACE = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

type Tree = { [key: string]: Tree | string };

/** Turns `Filters.member.1.Values.member.2=x` into `{ Filters: [{ Values: [, "x"] }] }`. */
export function parseQueryParameters(body: string): {
  action: string;
  version: string;
  params: Record<string, unknown>;
} {
  const form = new URLSearchParams(body);
  const root: Tree = {};
  let action = "";
  let version = "";
  for (const [key, value] of form) {
    if (key === "Action") {
      action = value;
      continue;
    }
    if (key === "Version") {
      version = value;
      continue;
    }
    const path = key.split(".").filter((segment) => segment !== "member");
    let node: Tree = root;
    for (const [index, segment] of path.entries()) {
      if (index === path.length - 1) {
        node[segment] = value;
      } else {
        const next = node[segment];
        if (typeof next === "object") node = next;
        else {
          const created: Tree = {};
          node[segment] = created;
          node = created;
        }
      }
    }
  }
  return { action, version, params: toArrays(root) as Record<string, unknown> };
}

function toArrays(node: Tree | string): unknown {
  if (typeof node === "string") return node;
  const keys = Object.keys(node);
  if (keys.length > 0 && keys.every((key) => /^\d+$/.test(key))) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((key) => toArrays(node[String(key)]!));
  }
  return Object.fromEntries(keys.map((key) => [key, toArrays(node[key]!)]));
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (char) =>
    char === "<"
      ? "&lt;"
      : char === ">"
        ? "&gt;"
        : char === "&"
          ? "&amp;"
          : char === "'"
            ? "&apos;"
            : "&quot;",
  );
}

function toXml(name: string, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value))
    return `<${name}>${value.map((item) => toXml("member", item)).join("")}</${name}>`;
  if (value instanceof Date) return `<${name}>${value.toISOString()}</${name}>`;
  if (typeof value === "object") {
    const inner = Object.entries(value)
      .map(([key, item]) => toXml(key, item))
      .join("");
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export function queryResponse(
  action: string,
  result: Record<string, unknown> | undefined,
  requestId: string,
): string {
  const body = result && Object.keys(result).length > 0 ? toXml(`${action}Result`, result) : "";
  return `<${action}Response xmlns="${AUTO_SCALING_NAMESPACE}">${body}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
}

export function queryError(
  fault: "Sender" | "Receiver",
  code: string,
  message: string,
  requestId: string,
): string {
  return `<ErrorResponse xmlns="${AUTO_SCALING_NAMESPACE}"><Error><Type>${fault}</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
}
