import type { WriteInput } from "../world/dynamodb.js";
import type { Operation } from "./operation.js";

export const dynamoDbOperations: Record<string, Operation> = {
  PutItem(input, { world }) {
    const old = world.dynamodb.putItem(input as WriteInput);
    return old ? { Attributes: old } : {};
  },
  GetItem(input, { world }) {
    const item = world.dynamodb.getItem(input as WriteInput);
    return item ? { Item: item } : {};
  },
  DeleteItem(input, { world }) {
    const old = world.dynamodb.deleteItem(input as WriteInput);
    return old ? { Attributes: old } : {};
  },
};
