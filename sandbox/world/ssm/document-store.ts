import { createHash } from "node:crypto";
import {
  AGENT_PACKAGES,
  DISTRIBUTOR_DOCUMENT,
  RUN_POWERSHELL_SCRIPT_DOCUMENT,
  RUN_SHELL_SCRIPT_DOCUMENT,
} from "../../../functions/core/contract.js";
import { ACCOUNT_ID, AwsServiceError, constraintViolation } from "../service-error.js";
import { type CommandDocument, parseCommandDocument } from "./command-documents.js";

/** What DescribeDocument and GetDocument tell of a document. */
export interface DocumentInfo {
  name: string;
  owner: string;
  documentType: "Command" | "Package";
  schemaVersion: string;
  documentVersion: string;
  /** A package's version (the newest published one by default). */
  versionName?: string;
  description: string;
  createdAt: number;
  parameters: { name: string; type: string; description: string; defaultValue?: string }[];
  platformTypes: string[];
  content: string;
  hash: string;
}

export interface CreateDocumentInput {
  name: string | undefined;
  /** The schemaVersion 2.2 object, or its JSON text (the wire's Content). */
  content: Record<string, unknown> | string | undefined;
  documentType?: string;
  documentFormat?: string;
}

/** CreateDocument's Name: 3 to 128 of these characters. */
const NAME_PATTERN = /^[a-zA-Z0-9_\-.]{3,128}$/;
/**
 * "You can't use the following strings as document name prefixes ... aws, amazon, amzn, AWSEC2,
 * AWSConfigRemediation, AWSSupport" (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateDocument.html).
 */
const RESERVED_PREFIXES = ["aws", "amazon", "amzn"];
const DOCUMENT_TYPES = [
  "Command",
  "Policy",
  "Automation",
  "Session",
  "Package",
  "ApplicationConfiguration",
  "ApplicationConfigurationSchema",
  "DeploymentStrategy",
  "ChangeCalendar",
  "Automation.ChangeTemplate",
  "ProblemAnalysis",
  "ProblemAnalysisTemplate",
  "CloudFormation",
  "ConformancePackTemplate",
  "QuickSetup",
  "ManualApprovalPolicy",
  "AutoApprovalPolicy",
];

/** The AWS-owned Command documents Run Command runs here, as their owner publishes them (in outline). */
const AWS_COMMAND_DOCUMENTS: Record<string, { content: Record<string, unknown>; platformTypes: string[] }> = {
  [DISTRIBUTOR_DOCUMENT]: {
    platformTypes: ["Windows", "Linux", "MacOS"],
    content: {
      schemaVersion: "2.2",
      description: "Install or uninstall a Distributor package.",
      parameters: {
        action: { type: "String", allowedValues: ["Install", "Uninstall"] },
        installationType: {
          type: "String",
          default: "Uninstall and reinstall",
          allowedValues: ["Uninstall and reinstall", "In-place update"],
        },
        name: { type: "String", allowedPattern: "^[a-zA-Z0-9/:.\\-_]{1,128}$" },
        version: { type: "String", default: "" },
        additionalArguments: { type: "StringMap", default: {}, maxChars: 4096 },
      },
      mainSteps: [{ action: "aws:configurePackage", name: "configurePackage", inputs: {} }],
    },
  },
  [RUN_SHELL_SCRIPT_DOCUMENT]: {
    platformTypes: ["Linux", "MacOS"],
    content: {
      schemaVersion: "1.2",
      description: "Run a shell script or specify the commands to run.",
      parameters: {
        commands: { type: "StringList" },
        workingDirectory: { type: "String", default: "" },
        executionTimeout: { type: "String", default: "3600" },
      },
      runtimeConfig: { "aws:runShellScript": { properties: [{ id: "0.aws:runShellScript" }] } },
    },
  },
  [RUN_POWERSHELL_SCRIPT_DOCUMENT]: {
    platformTypes: ["Windows", "Linux", "MacOS"],
    content: {
      schemaVersion: "1.2",
      description: "Run a PowerShell script or specify the paths to scripts to run.",
      parameters: {
        commands: { type: "StringList" },
        workingDirectory: { type: "String", default: "" },
        executionTimeout: { type: "String", default: "3600" },
      },
      runtimeConfig: { "aws:runPowerShellScript": { properties: [{ id: "0.aws:runPowerShellScript" }] } },
    },
  },
};

/**
 * The account's SSM documents: the Command documents created in it, the AWS-owned Command documents,
 * and the Distributor packages of the CodeDeploy agent, whose default version is the newest
 * published one.
 */
export class DocumentStore {
  private readonly created = new Map<string, CommandDocument>();

  constructor(
    private readonly packageVersions: () => Record<string, string[]>,
    private readonly now: () => number,
  ) {}

  create(input: CreateDocumentInput): DocumentInfo {
    const { name, content } = input;
    if (name === undefined) throw constraintViolation("name", "null", "Member must not be null");
    if (content === undefined) throw constraintViolation("content", "null", "Member must not be null");
    if (!NAME_PATTERN.test(name)) {
      throw constraintViolation(
        "name",
        name,
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$",
      );
    }
    if (RESERVED_PREFIXES.some((prefix) => name.toLowerCase().startsWith(prefix))) {
      throw new AwsServiceError(
        "ValidationException",
        `Document name ${name} is not valid: the prefixes aws, amazon and amzn are reserved.`,
      );
    }
    const documentType = input.documentType ?? "Command";
    if (!DOCUMENT_TYPES.includes(documentType)) {
      throw constraintViolation(
        "documentType",
        documentType,
        `Member must satisfy enum value set: [${DOCUMENT_TYPES.join(", ")}]`,
      );
    }
    const format = input.documentFormat ?? "JSON";
    if (!["JSON", "YAML", "TEXT"].includes(format)) {
      throw constraintViolation(
        "documentFormat",
        format,
        "Member must satisfy enum value set: [YAML, JSON, TEXT]",
      );
    }
    if (documentType !== "Command" || format !== "JSON") {
      throw new AwsServiceError(
        "InvalidDocumentContent",
        `A ${documentType} document in ${format}: this sandbox emulates Command documents in JSON only.`,
      );
    }
    if (this.created.has(name)) {
      throw new AwsServiceError("DocumentAlreadyExists", "The specified document already exists.");
    }
    const text = typeof content === "string" ? content : JSON.stringify(content);
    const document = parseCommandDocument(name, text, this.now());
    this.created.set(name, document);
    return this.describe(name);
  }

  /** A Command document created in the account, to run. */
  commandDocument(name: string): CommandDocument | undefined {
    return this.created.get(name);
  }

  /** DescribeDocument / GetDocument; InvalidDocument for a name the account does not see. */
  describe(name: string, versionName?: string, documentVersion?: string): DocumentInfo {
    const created = this.created.get(name);
    if (created) {
      checkVersion(documentVersion);
      return {
        name,
        owner: ACCOUNT_ID,
        documentType: "Command",
        schemaVersion: created.schemaVersion,
        documentVersion: "1",
        description: created.description,
        createdAt: created.createdAt,
        parameters: Object.entries(created.parameters).map(([parameter, definition]) => ({
          name: parameter,
          type: definition.type,
          description: definition.description ?? "",
          defaultValue: defaultText(definition.default),
        })),
        platformTypes: platformsOf(created.steps.map((step) => step.action)),
        content: created.content,
        hash: sha256(created.content),
      };
    }
    const aws = AWS_COMMAND_DOCUMENTS[name];
    if (aws) {
      const content = JSON.stringify(aws.content);
      const parameters = aws.content.parameters as Record<string, { type: string; default?: unknown }>;
      return {
        name,
        owner: "Amazon",
        documentType: "Command",
        schemaVersion: String(aws.content.schemaVersion),
        documentVersion: "1",
        description: String(aws.content.description),
        createdAt: Date.UTC(2017, 0, 1),
        parameters: Object.entries(parameters).map(([parameter, definition]) => ({
          name: parameter,
          type: definition.type,
          description: "",
          defaultValue: defaultText(definition.default),
        })),
        platformTypes: aws.platformTypes,
        content,
        hash: sha256(content),
      };
    }
    return this.describePackage(name, versionName);
  }

  /** A Distributor package: its default version is the newest one published. */
  private describePackage(name: string, versionName?: string): DocumentInfo {
    const versions = this.packageVersions()[name];
    if (!versions || versions.length === 0 || !(AGENT_PACKAGES as readonly string[]).includes(name)) {
      throw new AwsServiceError("InvalidDocument", "The specified document does not exist.");
    }
    const index = versionName === undefined ? versions.length - 1 : versions.indexOf(versionName);
    if (index < 0) throw new AwsServiceError("InvalidDocument", "The specified document does not exist.");
    const version = versions[index]!;
    // The manifest's outline; the real one lists the files per platform and architecture.
    const content = JSON.stringify({ schemaVersion: "2.0", publisher: "Amazon Web Services", version });
    return {
      name,
      owner: "Amazon",
      documentType: "Package",
      schemaVersion: "2.0",
      documentVersion: String(index + 1),
      versionName: version,
      description: `The CodeDeploy agent (${name}), published by AWS as a Distributor package.`,
      createdAt: Date.UTC(2020, 0, 1),
      parameters: [],
      platformTypes: ["Windows", "Linux"],
      content,
      hash: sha256(content),
    };
  }
}

function checkVersion(documentVersion: string | undefined): void {
  if (documentVersion === undefined || ["1", "$DEFAULT", "$LATEST"].includes(documentVersion)) return;
  throw new AwsServiceError("InvalidDocumentVersion", "The document version is not valid or does not exist.");
}

function defaultText(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The platforms a document's plugins run on (aws:runShellScript is not there on Windows Server). */
function platformsOf(actions: string[]): string[] {
  const everywhere = actions.some((action) => action !== "aws:runShellScript");
  return everywhere ? ["Windows", "Linux", "MacOS"] : ["Linux", "MacOS"];
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
