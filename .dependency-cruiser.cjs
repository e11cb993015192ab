/**
 * The layers of DESIGN.md, enforced: core ← {aws, host} ← snapshot ← drivers ← plugin ← cli, with
 * localcloud apart. One rule per wall and direction; `npm run lint:deps` names any import that
 * breaks one, and `npm test` runs it.
 */
const LAYERS = '^(core|aws|host|snapshot|drivers|plugin|cli|localcloud)/';
const layer = (name) => `^${name}/`;

/** A rule that `from` may not import any of `to`. */
function forbid(name, comment, from, to) {
  return { name, comment, severity: 'error', from: { path: from }, to: { path: to } };
}

module.exports = {
  forbidden: [
    forbid('core-imports-nothing-of-ours', 'core/ is the floor: it imports no other layer', layer('core'), '^(aws|host|snapshot|drivers|plugin|cli|localcloud|bench|test)/'),
    forbid('aws-below-snapshot', 'aws/ imports only core/', layer('aws'), '^(host|snapshot|drivers|plugin|cli|localcloud)/'),
    forbid('host-below-snapshot', 'host/ imports only core/', layer('host'), '^(aws|snapshot|drivers|plugin|cli|localcloud)/'),
    forbid('snapshot-never-imports-drivers', 'snapshot/ sits below drivers/: it imports core/, aws/ and host/ only', layer('snapshot'), '^(drivers|plugin|cli|localcloud)/'),
    forbid('drivers-below-plugin', 'drivers/ never reach into the protocol or the CLI', layer('drivers'), '^(plugin|cli|localcloud)/'),
    forbid('plugin-below-cli', 'plugin/ does not know the CLI or the emulator', layer('plugin'), '^(cli|localcloud)/'),
    forbid('localcloud-imports-nothing-of-ours', 'the emulator shares no code with what it emulates for', layer('localcloud'), '^(core|aws|host|snapshot|drivers|plugin|cli)/'),
    forbid('only-cli-starts-localcloud', 'only cli/ (and the test and bench harnesses) may start the emulator', '^(core|aws|host|snapshot|drivers|plugin)/', layer('localcloud')),
    { name: 'no-cycles', comment: 'no module may import itself through others', severity: 'error', from: { path: LAYERS }, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    moduleSystems: ['es6'],
  },
};
