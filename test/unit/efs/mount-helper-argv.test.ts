import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecRunner } from '../../../host/exec.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { createNfsMounter, EFS_NFS_OPTIONS } from '../../../drivers/shared/mounter.js';
import { silentLogger } from '../../../core/log.js';

/** The exact commands the AWS mounter runs, through the real host layer with a recording exec. */
describe('NFS and EFS mount helper argv', () => {
  let dir: string;
  let argvs: string[][];
  let exec: ExecRunner;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-argv-'));
    // Nothing mounted yet, as the host layer reads it.
    await mkdir(join(dir, 'proc', 'self'), { recursive: true });
    await writeFile(join(dir, 'proc', 'self', 'mountinfo'), '');
    argvs = [];
    exec = async (file, args) => {
      argvs.push([file, ...args]);
      return { exitCode: 0, stdout: '', stderr: '' };
    };
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const mounter = () => createNfsMounter(createLinuxHost({ deviceDir: dir, exec, procDir: join(dir, 'proc') }));

  test('directory mode: the kernel NFS client on <mount target ip>:/stowage/<cluster>/<name>', async () => {
    await mounter().mount({ server: '10.0.2.10', path: '/stowage/c1/v1', options: EFS_NFS_OPTIONS }, join(dir, 'v1'), silentLogger);
    expect(argvs).toEqual([[
      'mount', '-t', 'nfs4', '-o', 'nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport', '10.0.2.10:/stowage/c1/v1', join(dir, 'v1'),
    ]]);
  });

  test('access point mode: the EFS mount helper with TLS, the access point and the chosen mount target', async () => {
    await mounter().mount(
      { server: '10.0.2.10', path: '/', options: EFS_NFS_OPTIONS, accessPoint: { id: 'fsap-0123456789abcdef0', fileSystemId: 'fs-0123456789abcdef0', rootDirectory: '/stowage/c1/v1' } },
      join(dir, 'v1'),
      silentLogger,
    );
    expect(argvs).toEqual([[
      'mount', '-t', 'efs', '-o',
      'tls,accesspoint=fsap-0123456789abcdef0,mounttargetip=10.0.2.10,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport',
      'fs-0123456789abcdef0:/', join(dir, 'v1'),
    ]]);
  });
});
