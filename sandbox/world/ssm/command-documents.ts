import { AwsServiceError } from "../service-error.js";

// Command documents of schemaVersion 2.2 created in the account: their content as SSM checks it at
// CreateDocument, and their parameters as SendCommand checks and resolves them.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-schemas-features.html

export interface DocumentParameter {
  type: string;
  description?: string;
  default?: unknown;
  allowedValues?: string[];
  allowedPattern?: string;
}

export interface DocumentStep {
  action: string;
  name: string;
  precondition?: Record<string, unknown>;
  inputs: Record<string, unknown>;
}

export interface CommandDocument {
  name: string;
  /** The content as CreateDocument received it (GetDocument gives it back). */
  content: string;
  schemaVersion: string;
  description: string;
  parameters: Record<string, DocumentParameter>;
  steps: DocumentStep[];
  createdAt: number;
}

/** The plugins the sandbox runs; SSM knows more, which a document here cannot use. */
export const EMULATED_ACTIONS = ["aws:runShellScript", "aws:runPowerShellScript", "aws:configurePackage"];
const PARAMETER_TYPES = ["String", "StringList", "Boolean", "Integer", "MapList", "StringMap"];
/** "The content of the document must not exceed 64KB" (CreateDocument, Content). */
const MAX_CONTENT_BYTES = 64 * 1024;

function invalidContent(detail: string): AwsServiceError {
  return new AwsServiceError(
    "InvalidDocumentContent",
    `The content for the document is not valid. ${detail}`,
  );
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  !!value && typeof value === "object" && !Array.isArray(value);

/** Checks a Command document's content as CreateDocument does and reads its parameters and steps. */
export function parseCommandDocument(name: string, content: string, createdAt: number): CommandDocument {
  if (Buffer.byteLength(content, "utf8") > MAX_CONTENT_BYTES) {
    throw new AwsServiceError("MaxDocumentSizeExceeded", "The size limit of a document is 64 KB.");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    throw invalidContent("It is not well-formed JSON.");
  }
  if (!isRecord(parsed)) throw invalidContent("It must be a JSON object.");
  const schemaVersion = parsed.schemaVersion;
  if (typeof schemaVersion !== "string") throw invalidContent("schemaVersion is required.");
  if (schemaVersion !== "2.2") {
    throw invalidContent(`schemaVersion ${schemaVersion}: this sandbox runs Command documents of 2.2 only.`);
  }
  const parameters = isRecord(parsed.parameters) ? parsed.parameters : {};
  for (const [parameter, definition] of Object.entries(parameters)) {
    if (!isRecord(definition) || !PARAMETER_TYPES.includes(String(definition.type))) {
      throw invalidContent(`Parameter ${parameter} needs a type, one of ${PARAMETER_TYPES.join(", ")}.`);
    }
    if (definition.allowedPattern !== undefined) {
      try {
        new RegExp(String(definition.allowedPattern));
      } catch {
        throw invalidContent(
          `Parameter ${parameter} has an allowedPattern that is not a regular expression.`,
        );
      }
    }
  }
  const mainSteps = parsed.mainSteps;
  if (!Array.isArray(mainSteps) || mainSteps.length === 0) throw invalidContent("mainSteps is required.");
  const steps: DocumentStep[] = [];
  for (const step of mainSteps) {
    if (!isRecord(step) || typeof step.name !== "string" || typeof step.action !== "string") {
      throw invalidContent("Every step needs a name and an action.");
    }
    if (!/^[a-zA-Z0-9_\-.:]{1,100}$/.test(step.name))
      throw invalidContent(`Step name ${step.name} is not valid.`);
    if (steps.some((other) => other.name === step.name)) {
      throw invalidContent(`Step name ${step.name} is used more than once.`);
    }
    if (!EMULATED_ACTIONS.includes(step.action)) {
      throw invalidContent(`Action ${step.action}: this sandbox runs only ${EMULATED_ACTIONS.join(", ")}.`);
    }
    if (step.precondition !== undefined && !isRecord(step.precondition)) {
      throw invalidContent(`The precondition of step ${step.name} must be an object.`);
    }
    steps.push({
      action: step.action,
      name: step.name,
      precondition: step.precondition as Record<string, unknown> | undefined,
      inputs: isRecord(step.inputs) ? step.inputs : {},
    });
  }
  return {
    name,
    content,
    schemaVersion,
    description: typeof parsed.description === "string" ? parsed.description : "",
    parameters: parameters as Record<string, DocumentParameter>,
    steps,
    createdAt,
  };
}

/**
 * SendCommand's check of the parameters against the document's definitions, and the values the steps
 * see: every name defined, a value where there is no default, each value in allowedValues and
 * matching allowedPattern. SSM names no parameter when it refuses them: "Parameters provided in
 * document are invalid or not supported.", reported for an unknown name (gravitational/teleport RFD
 * 223) and for a value outside allowedValues; the same words are assumed for the other two cases.
 */
export function resolveParameters(
  document: CommandDocument,
  given: Record<string, string[]>,
): Record<string, string[]> {
  const refuse = () =>
    new AwsServiceError("InvalidParameters", "Parameters provided in document are invalid or not supported.");
  for (const [name, value] of Object.entries(given)) {
    if (!(name in document.parameters)) throw refuse();
    if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) throw refuse();
  }
  const resolved: Record<string, string[]> = {};
  for (const [name, definition] of Object.entries(document.parameters)) {
    const values = given[name] ?? defaultValues(definition.default);
    if (values === undefined) throw refuse();
    if (definition.type === "String" && values.length !== 1) throw refuse();
    const pattern =
      definition.allowedPattern === undefined ? undefined : new RegExp(definition.allowedPattern);
    for (const value of values) {
      if (definition.allowedValues && !definition.allowedValues.includes(value)) throw refuse();
      if (pattern && !pattern.test(value)) throw refuse();
    }
    resolved[name] = values;
  }
  return resolved;
}

function defaultValues(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map(String);
  return [typeof value === "string" ? value : JSON.stringify(value)];
}

/** Replaces `{{ name }}` in a step input by the parameter's value (a list's items joined by commas). */
export function substitute(text: string, parameters: Record<string, string[]>): string {
  return text.replace(/\{\{\s*([a-zA-Z0-9_]+)\s*\}\}/g, (whole, name: string) =>
    parameters[name] ? parameters[name].join(",") : whole,
  );
}

/** A step input as a string, its `{{ parameters }}` resolved ("" when absent). */
export function inputString(step: DocumentStep, key: string, parameters: Record<string, string[]>): string {
  const value = step.inputs[key];
  if (value === undefined || value === null) return "";
  return substitute(typeof value === "string" ? value : String(value), parameters);
}

/** The lines of a script step (`runCommand` is a list of lines or one string). */
export function scriptLines(step: DocumentStep, parameters: Record<string, string[]>): string[] {
  const value = step.inputs.runCommand;
  const lines = Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : [];
  return lines.map((line) => substitute(line, parameters));
}
