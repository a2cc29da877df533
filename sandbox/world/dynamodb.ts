import { type AttributeValue, evaluateCondition, type Item } from "./condition-expression.js";
import { AwsServiceError } from "./service-error.js";

export interface TableSpec {
  name: string;
  /** The partition key attribute (string). The service's lease table uses `pk`. */
  hashKey?: string;
}

interface Table {
  name: string;
  hashKey: string;
  items: Map<string, Item>;
  createdAt: number;
}

export interface WriteInput {
  TableName?: string;
  Item?: Item;
  Key?: Item;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, AttributeValue>;
  ReturnValues?: string;
}

/** DynamoDB tables with a string partition key: PutItem / GetItem / DeleteItem with condition expressions. */
export class DynamoDbModel {
  readonly tables = new Map<string, Table>();
  conditionalCheckFailures = 0;

  constructor(private readonly now: () => number) {}

  createTable(spec: TableSpec): void {
    this.tables.set(spec.name, {
      name: spec.name,
      hashKey: spec.hashKey ?? "pk",
      items: new Map(),
      createdAt: this.now(),
    });
  }

  private table(name: string | undefined): Table {
    const table = name ? this.tables.get(name) : undefined;
    if (!table) throw new AwsServiceError("ResourceNotFoundException", "Requested resource not found");
    return table;
  }

  private keyOf(table: Table, item: Item | undefined, what: "Item" | "Key"): string {
    const key = item?.[table.hashKey];
    if (!key || (key.S === undefined && key.N === undefined)) {
      throw new AwsServiceError(
        "ValidationException",
        what === "Item"
          ? `One or more parameter values were invalid: Missing the key ${table.hashKey} in the item`
          : "The provided key element does not match the schema",
      );
    }
    return JSON.stringify(key);
  }

  private check(table: Table, key: string, input: WriteInput): Item | undefined {
    const existing = table.items.get(key);
    if (input.ConditionExpression) {
      const passed = evaluateCondition(
        input.ConditionExpression,
        existing,
        input.ExpressionAttributeNames,
        input.ExpressionAttributeValues,
      );
      if (!passed) {
        this.conditionalCheckFailures++;
        throw new AwsServiceError("ConditionalCheckFailedException", "The conditional request failed");
      }
    }
    return existing;
  }

  putItem(input: WriteInput): Item | undefined {
    const table = this.table(input.TableName);
    const key = this.keyOf(table, input.Item, "Item");
    const existing = this.check(table, key, input);
    table.items.set(key, structuredClone(input.Item!));
    return input.ReturnValues === "ALL_OLD" ? existing : undefined;
  }

  getItem(input: { TableName?: string; Key?: Item }): Item | undefined {
    const table = this.table(input.TableName);
    const item = table.items.get(this.keyOf(table, input.Key, "Key"));
    return item ? structuredClone(item) : undefined;
  }

  deleteItem(input: WriteInput): Item | undefined {
    const table = this.table(input.TableName);
    const key = this.keyOf(table, input.Key, "Key");
    const existing = this.check(table, key, input);
    table.items.delete(key);
    return input.ReturnValues === "ALL_OLD" ? existing : undefined;
  }
}
