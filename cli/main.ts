#!/usr/bin/env node
import { pluginCommand } from './plugin.js';
import { localcloudCommand } from './localcloud.js';
import { opsCommands } from './ops/index.js';
import { VERSION } from './version.js';

const USAGE = `stowage — Docker volume plugin for Swarm on AWS

Usage:
  stowage plugin [--dev]         run the volume plugin (stowage plugin --help lists every setting)
  stowage localcloud --dir DIR   run the EC2 + EFS + IMDS emulator (stowage localcloud --help)
  stowage ls                     every Stowage volume, across regions
  stowage inspect NAME           one volume: EBS volume(s), attachment, snapshots, move history
  stowage relocate NAME --to-zone ZONE   move a detached volume to another zone, with progress
  stowage snapshot NAME          an on-demand snapshot, counted by retention
  stowage backups NAME           a volume's backups and DR copies, with region, time and state
  stowage restore NAME --from SNAPSHOT [--as NEWNAME] [--zone Z]   a volume from a backup (new name, or replacing a detached one)
  stowage gc [--apply]           list (and remove) what Stowage left behind
  stowage adopt VOLUME-ID --name NAME   bring an existing EBS volume into the cluster (or --from cloudstor|rexray)
  (every operator command takes --region, --all-regions, --cluster, --endpoint, --json, --help)
  stowage --help | --version

Examples:
  stowage plugin --dev           the plugin on an embedded localcloud emulator (what npm start runs)
  stowage localcloud --dir /tmp/lc --listen 127.0.0.1:4566 --zones us-east-1a,us-east-1b
  stowage ls --all-regions --cluster prod
  stowage gc --region us-east-1 --apply
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  plugin: pluginCommand,
  localcloud: localcloudCommand,
  ...opsCommands,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(`stowage ${VERSION}\n`);
    return 0;
  }
  const run = commands[command];
  if (!run) {
    process.stderr.write(`stowage: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running commands resolve only when they are asked to stop.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`stowage: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
