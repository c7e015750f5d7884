// The launchd property list for the agent (macOS): a LaunchDaemon (system,
// with UserName) or a LaunchAgent (the user's). launchd restarts it
// (KeepAlive) no more often than every ThrottleInterval seconds; it has no
// give-up limit like systemd's StartLimitBurst.
import { LAUNCHD_LABEL, type UnitSpec, agentArgs } from './unit';

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const str = (s: string) => `<string>${xml(s)}</string>`;

export function launchdPlist(s: UnitSpec & { logFile: string }): string {
  const system = s.scope === 'system';
  const args = [s.node, s.agentBin, ...agentArgs(s)];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    // No "--" inside an XML comment: "(a user service)" rather than the flag.
    `<!-- Written by cmdop agent install-service${system ? '' : ' (a user service)'}, cmdop ${xml(s.version)}. Remove it with cmdop agent uninstall-service. -->`,
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key>${str(LAUNCHD_LABEL)}`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...args.map((a) => `    ${str(a)}`),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    `    <key>CMDOP_SERVER</key>${str(s.server)}`,
    '  </dict>',
    ...(system && s.runAs ? [`  <key>UserName</key>${str(s.runAs.user)}`, `  <key>GroupName</key>${str(s.runAs.group)}`] : []),
    '  <key>RunAtLoad</key><true/>',
    '  <key>KeepAlive</key><true/>',
    '  <key>ThrottleInterval</key><integer>10</integer>',
    `  <key>StandardOutPath</key>${str(s.logFile)}`,
    `  <key>StandardErrorPath</key>${str(s.logFile)}`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

export const plistFileName = `${LAUNCHD_LABEL}.plist`;
