import { AwsServiceError } from "./service-error.js";

/**
 * A DynamoDB condition expression evaluator for the grammar the service uses and a little more:
 * comparisons (= <> < <= > >=) between paths and values, attribute_exists / attribute_not_exists,
 * begins_with, AND / OR / NOT and parentheses, with #name and :value placeholders.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
 */
export type AttributeValue = {
  S?: string;
  N?: string;
  BOOL?: boolean;
  NULL?: boolean;
  [type: string]: unknown;
};
export type Item = Record<string, AttributeValue>;

type Token = {
  kind: "name" | "value" | "path" | "op" | "lparen" | "rparen" | "comma" | "keyword";
  text: string;
};

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s*(?:(<>|<=|>=|=|<|>)|(\()|(\))|(,)|(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_.]*))/y;
  let index = 0;
  while (index < expression.length) {
    if (/^\s*$/.test(expression.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(expression);
    if (!match)
      throw invalid(
        `Syntax error; token: "${expression.slice(index).trim().split(/\s/)[0]}", near: "${expression.slice(index, index + 10).trim()}"`,
      );
    index = pattern.lastIndex;
    if (match[1]) tokens.push({ kind: "op", text: match[1] });
    else if (match[2]) tokens.push({ kind: "lparen", text: "(" });
    else if (match[3]) tokens.push({ kind: "rparen", text: ")" });
    else if (match[4]) tokens.push({ kind: "comma", text: "," });
    else if (match[5]) tokens.push({ kind: "name", text: match[5] });
    else if (match[6]) tokens.push({ kind: "value", text: match[6] });
    else if (match[7]) {
      const upper = match[7].toUpperCase();
      tokens.push(
        ["AND", "OR", "NOT"].includes(upper)
          ? { kind: "keyword", text: upper }
          : { kind: "path", text: match[7] },
      );
    }
  }
  return tokens;
}

function invalid(detail: string): AwsServiceError {
  return new AwsServiceError("ValidationException", `Invalid ConditionExpression: ${detail}`);
}

type Operand = { kind: "path"; name: string } | { kind: "value"; value: AttributeValue };

export function evaluateCondition(
  expression: string,
  item: Item | undefined,
  names: Record<string, string> = {},
  values: Record<string, AttributeValue> = {},
): boolean {
  const tokens = tokenize(expression);
  let position = 0;
  const used = { names: new Set<string>(), values: new Set<string>() };
  const peek = () => tokens[position];
  const take = () => {
    const token = tokens[position++];
    if (!token) throw invalid("Syntax error; token: <EOF>");
    return token;
  };

  const operand = (): Operand => {
    const token = take();
    if (token.kind === "value") {
      const value = values[token.text];
      if (!value) {
        throw invalid(
          `An expression attribute value used in expression is not defined; attribute value: ${token.text}`,
        );
      }
      used.values.add(token.text);
      return { kind: "value", value };
    }
    if (token.kind === "name") {
      const name = names[token.text];
      if (!name)
        throw invalid(
          `An expression attribute name used in the document path is not defined; attribute name: ${token.text}`,
        );
      used.names.add(token.text);
      return { kind: "path", name };
    }
    if (token.kind === "path") return { kind: "path", name: token.text };
    throw invalid(`Syntax error; token: "${token.text}"`);
  };

  const resolve = (value: Operand): AttributeValue | undefined =>
    value.kind === "value" ? value.value : item?.[value.name];

  const primary = (): boolean => {
    const token = peek();
    if (!token) throw invalid("Syntax error; token: <EOF>");
    if (token.kind === "lparen") {
      take();
      const result = disjunction();
      if (take().kind !== "rparen") throw invalid("Syntax error; missing )");
      return result;
    }
    if (token.kind === "path" && tokens[position + 1]?.kind === "lparen") {
      const fn = take().text;
      take();
      const args: Operand[] = [operand()];
      while (peek()?.kind === "comma") {
        take();
        args.push(operand());
      }
      if (take().kind !== "rparen") throw invalid("Syntax error; missing )");
      const first = args[0]!;
      switch (fn) {
        case "attribute_exists":
          return first.kind === "path" && item?.[first.name] !== undefined;
        case "attribute_not_exists":
          return first.kind === "path" && item?.[first.name] === undefined;
        case "begins_with": {
          const left = resolve(first);
          const right = args[1] ? resolve(args[1]) : undefined;
          return typeof left?.S === "string" && typeof right?.S === "string" && left.S.startsWith(right.S);
        }
        default:
          throw invalid(`Invalid function name; function: ${fn}`);
      }
    }
    const left = operand();
    const op = take();
    if (op.kind !== "op") throw invalid(`Syntax error; token: "${op.text}"`);
    return compare(resolve(left), op.text, resolve(operand()));
  };

  const negation = (): boolean => {
    if (peek()?.kind === "keyword" && peek()?.text === "NOT") {
      take();
      return !negation();
    }
    return primary();
  };

  const conjunction = (): boolean => {
    let result = negation();
    while (peek()?.kind === "keyword" && peek()?.text === "AND") {
      take();
      const right = negation();
      result = result && right;
    }
    return result;
  };

  function disjunction(): boolean {
    let result = conjunction();
    while (peek()?.kind === "keyword" && peek()?.text === "OR") {
      take();
      const right = conjunction();
      result = result || right;
    }
    return result;
  }

  const result = disjunction();
  if (position < tokens.length) throw invalid(`Syntax error; token: "${tokens[position]?.text}"`);
  const unusedValues = Object.keys(values).filter((key) => !used.values.has(key));
  if (unusedValues.length > 0) {
    throw new AwsServiceError(
      "ValidationException",
      `Value provided in ExpressionAttributeValues unused in expressions: keys: {${unusedValues.join(", ")}}`,
    );
  }
  const unusedNames = Object.keys(names).filter((key) => !used.names.has(key));
  if (unusedNames.length > 0) {
    throw new AwsServiceError(
      "ValidationException",
      `Value provided in ExpressionAttributeNames unused in expressions: keys: {${unusedNames.join(", ")}}`,
    );
  }
  return result;
}

function compare(left: AttributeValue | undefined, op: string, right: AttributeValue | undefined): boolean {
  // A missing attribute makes every comparison false (and <> true only when both exist and differ).
  if (!left || !right) return false;
  let a: string | number | boolean | undefined;
  let b: string | number | boolean | undefined;
  if (left.N !== undefined && right.N !== undefined) {
    a = Number(left.N);
    b = Number(right.N);
  } else if (left.S !== undefined && right.S !== undefined) {
    a = left.S;
    b = right.S;
  } else if (left.BOOL !== undefined && right.BOOL !== undefined && (op === "=" || op === "<>")) {
    a = left.BOOL;
    b = right.BOOL;
  } else {
    return op === "<>";
  }
  switch (op) {
    case "=":
      return a === b;
    case "<>":
      return a !== b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    default:
      throw invalid(`Syntax error; token: "${op}"`);
  }
}
