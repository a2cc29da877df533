/**
 * Evaluates the intrinsic functions of a template, as CloudFormation would for given parameter
 * values: Ref (parameters, pseudo parameters, resources), Fn::Join, Fn::Select, Fn::Split, Fn::If,
 * Fn::Sub (pseudo parameters), Fn::GetAtt, Fn::ImportValue and the condition functions. What a
 * resource's reference or attribute stands for is left to `reference`.
 */
import { ACCOUNT } from "./template-helpers.js";

type Json = Record<string, unknown>;

export interface Evaluation {
  template: Json;
  parameters?: Record<string, string | string[]>;
  region?: string;
  /** What `{Ref: id}` / `{Fn::GetAtt: [id, attribute]}` of a resource (or an import) becomes. */
  reference?: (kind: "Ref" | "GetAtt" | "Import", id: string, attribute?: string) => string;
}

export function evaluator({ template, parameters = {}, region = "us-east-1", reference }: Evaluation) {
  const declared = (template.Parameters ?? {}) as Record<string, { Type: string; Default?: string }>;
  const conditions = (template.Conditions ?? {}) as Record<string, unknown>;
  const pseudo: Record<string, string> = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": region,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "agentfix",
  };
  const ref = reference ?? ((kind, id, attribute) => `<${kind}:${id}${attribute ? `.${attribute}` : ""}>`);
  const cache = new Map<string, boolean>();

  function parameter(name: string): string | string[] {
    const given = parameters[name];
    const spec = declared[name]!;
    const value = given ?? spec.Default ?? "";
    if (spec.Type === "CommaDelimitedList") return Array.isArray(value) ? value : String(value).split(",");
    return Array.isArray(value) ? value.join(",") : value;
  }

  function condition(name: string): boolean {
    if (!cache.has(name)) cache.set(name, Boolean(evaluate(conditions[name])));
    return cache.get(name)!;
  }

  function evaluate(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(evaluate);
    if (value === null || typeof value !== "object") return value;
    const object = value as Json;
    const [key] = Object.keys(object);
    const argument = key === undefined ? undefined : object[key];
    switch (key) {
      case "Ref": {
        const name = String(argument);
        if (name in pseudo) return pseudo[name];
        if (name in declared) return parameter(name);
        return ref("Ref", name);
      }
      case "Fn::GetAtt": {
        const [id, attribute] = argument as string[];
        return ref("GetAtt", id!, attribute);
      }
      case "Fn::ImportValue":
        return ref("Import", String(evaluate(argument)));
      case "Fn::Join": {
        const [separator, parts] = argument as [string, unknown];
        return (evaluate(parts) as unknown[]).map(String).join(separator);
      }
      case "Fn::Select": {
        const [index, list] = argument as [number | string, unknown];
        const items = evaluate(list) as unknown[];
        const i = Number(evaluate(index));
        if (i >= items.length) throw new Error(`Fn::Select index ${i} out of range of ${items.length}`);
        return items[i];
      }
      case "Fn::Split": {
        const [separator, source] = argument as [string, unknown];
        return String(evaluate(source)).split(separator);
      }
      case "Fn::If": {
        const [name, yes, no] = argument as [string, unknown, unknown];
        return evaluate(condition(name) ? yes : no);
      }
      case "Fn::Equals": {
        const [a, b] = argument as [unknown, unknown];
        return JSON.stringify(evaluate(a)) === JSON.stringify(evaluate(b));
      }
      case "Fn::Not":
        return !evaluate((argument as unknown[])[0]);
      case "Fn::And":
        return (argument as unknown[]).every((item) => evaluate(item));
      case "Fn::Or":
        return (argument as unknown[]).some((item) => evaluate(item));
      case "Condition":
        return condition(String(argument));
      case "Fn::Sub":
        return String(argument).replace(/\$\{([^}]+)\}/g, (match, name: string) =>
          name in pseudo ? pseudo[name]! : name in declared ? String(parameter(name)) : match,
        );
      default:
        return Object.fromEntries(Object.entries(object).map(([k, item]) => [k, evaluate(item)]));
    }
  }

  /** The resources CloudFormation would create: those without a condition, or whose condition holds. */
  function created(): [string, { Type: string; Properties?: Json; Condition?: string }][] {
    return Object.entries(
      (template.Resources ?? {}) as Record<string, { Type: string; Properties?: Json; Condition?: string }>,
    ).filter(([, resource]) => !resource.Condition || condition(resource.Condition));
  }

  return { evaluate, condition, created };
}
