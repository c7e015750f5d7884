// An agent's release and protocol against this control plane's: what the
// machines list and the log say about an agent older than our protocol
// (protocol/limits.ts PROTOCOL_VERSION; proto: Capabilities.protocol_version).
import { PROTOCOL_VERSION, protocolOf, type Capabilities } from '../../protocol';

/**
 * "agent 0.1.0 speaks protocol 1, older than this control plane's protocol
 * 2: upgrade it", or '' when the agent is as new as we are (or newer), or
 * nothing is known of it.
 */
export function olderAgentNotice(caps: Capabilities | undefined, ours = PROTOCOL_VERSION): string {
  if (!caps || (!caps.version && !caps.protocolVersion)) return '';
  const theirs = protocolOf(caps.protocolVersion);
  if (theirs >= ours) return '';
  return `agent ${caps.version || '(unknown version)'} speaks protocol ${theirs}, older than this control plane's protocol ${ours}: upgrade it`;
}
