// The onetrip flow language extension: starts the `onetrip-lsp` language server over stdio for
// `.flow` files. Highlighting, snippets and the language configuration are declarative (see
// package.json); everything else (diagnostics, hovers, definitions, …) comes from the server.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';

const LANGUAGE_ID = 'onetrip-flow';
/** The client id: VS Code reads `onetrip.trace.server` because of it. */
const CLIENT_ID = 'onetrip';
const CLIENT_NAME = 'onetrip flow language server';
const DEFAULT_SERVER = 'onetrip-lsp';

let client: LanguageClient | undefined;
/** What belongs to the running client and goes with it (the file watcher). */
let clientDisposables: vscode.Disposable[] = [];
let outputChannel: vscode.OutputChannel | undefined;
/** Starts and stops run one after the other, never interleaved. */
let queue: Promise<void> = Promise.resolve();

export function activate(context: vscode.ExtensionContext): Promise<void> {
  outputChannel = vscode.window.createOutputChannel(CLIENT_NAME);
  context.subscriptions.push(outputChannel);

  context.subscriptions.push(
    vscode.commands.registerCommand('onetrip.restartServer', () => enqueue(restart)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('onetrip.server.path')) {
        void enqueue(restart);
      }
    }),
  );

  return enqueue(start);
}

export function deactivate(): Promise<void> {
  return enqueue(stop);
}

function enqueue(task: () => Promise<void>): Promise<void> {
  queue = queue.then(task, task);
  return queue;
}

async function restart(): Promise<void> {
  await stop();
  await start();
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  try {
    if (running !== undefined) {
      await running.dispose(2000);
    }
  } catch (error) {
    log(`Stopping the server failed: ${describe(error)}`);
  } finally {
    for (const disposable of clientDisposables) {
      disposable.dispose();
    }
    clientDisposables = [];
  }
}

async function start(): Promise<void> {
  const setting = vscode.workspace.getConfiguration('onetrip').get<string>('server.path', DEFAULT_SERVER);
  const resolved = resolveServer(setting);
  if (typeof resolved !== 'string') {
    log(resolved.problem);
    void reportStartFailure(resolved.problem);
    return;
  }
  log(`Starting ${resolved}`);

  const serverOptions: ServerOptions = {
    command: resolved,
    args: [],
    transport: TransportKind.stdio,
    options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
  };

  // Changes to any .flow file of the workspace (also those not open, and deletions) reach the
  // server as workspace/didChangeWatchedFiles: an import may have changed under an open file.
  const watcher = vscode.workspace.createFileSystemWatcher('**/*.flow');
  clientDisposables.push(watcher);

  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: LANGUAGE_ID },
      { scheme: 'untitled', language: LANGUAGE_ID },
    ],
    synchronize: { fileEvents: watcher },
    outputChannel,
    traceOutputChannel: outputChannel,
  };

  const candidate = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
  client = candidate;
  try {
    await candidate.start();
  } catch (error) {
    if (client === candidate) {
      client = undefined;
    }
    try {
      await candidate.dispose(2000);
    } catch {
      // It never ran: nothing to stop.
    }
    const problem = `The onetrip language server \`${resolved}\` could not be started: ${describe(error)}`;
    log(problem);
    void reportStartFailure(problem);
  }
}

/** The absolute path of the server executable, or why there is none. */
function resolveServer(setting: string | undefined): string | { problem: string } {
  const raw = (setting ?? '').trim() || DEFAULT_SERVER;
  const expanded = expand(raw);
  const isBareName = !expanded.includes('/') && !expanded.includes('\\');

  if (isBareName) {
    const found = searchPath(expanded);
    if (found !== undefined) {
      return found;
    }
    return {
      problem:
        `The onetrip language server \`${expanded}\` was not found on PATH. ` +
        'Install it (cargo install --path editor-lsp, from the onetrip repository) or set ' +
        '"onetrip.server.path" to the full path of the onetrip-lsp binary.',
    };
  }

  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const absolute = path.isAbsolute(expanded) ? expanded : path.resolve(folder ?? process.cwd(), expanded);
  const found = executableAt(absolute);
  if (found !== undefined) {
    return found;
  }
  return {
    problem:
      `The onetrip language server was not found at \`${absolute}\` (setting "onetrip.server.path": ` +
      `"${raw}"), or it is not an executable file.`,
  };
}

/** `~`, `${userHome}` and `${workspaceFolder}` in the setting. */
function expand(value: string): string {
  const home = os.homedir();
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
  let result = value.replace(/\$\{userHome\}/g, home).replace(/\$\{workspaceFolder\}/g, folder);
  if (result === '~') {
    result = home;
  } else if (result.startsWith('~/') || result.startsWith('~\\')) {
    result = path.join(home, result.slice(2));
  }
  return result;
}

function searchPath(name: string): string | undefined {
  const directories = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '');
  for (const directory of directories) {
    const found = executableAt(path.join(directory, name));
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

/** `file` itself if it is an executable file; on Windows also `file` with an executable extension. */
function executableAt(file: string): string | undefined {
  const candidates = [file];
  if (process.platform === 'win32' && path.extname(file) === '') {
    const extensions = (process.env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter((ext) => ext !== '');
    candidates.push(...extensions.map((ext) => file + ext.toLowerCase()));
  }
  for (const candidate of candidates) {
    try {
      if (!fs.statSync(candidate).isFile()) {
        continue;
      }
      if (process.platform !== 'win32') {
        fs.accessSync(candidate, fs.constants.X_OK);
      }
      return candidate;
    } catch {
      // Not there, or not executable: try the next one.
    }
  }
  return undefined;
}

async function reportStartFailure(problem: string): Promise<void> {
  const openSettings = 'Open Settings';
  const showOutput = 'Show Output';
  const retry = 'Retry';
  const choice = await vscode.window.showErrorMessage(problem, openSettings, showOutput, retry);
  if (choice === openSettings) {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'onetrip.server.path');
  } else if (choice === showOutput) {
    outputChannel?.show(true);
  } else if (choice === retry) {
    await enqueue(restart);
  }
}

function log(message: string): void {
  outputChannel?.appendLine(`[${new Date().toISOString()}] ${message}`);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
