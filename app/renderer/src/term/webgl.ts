// Whether xterm's WebGL renderer is worth loading here. WebGL drawn by a
// software rasterizer (SwiftShader, llvmpipe: no GPU, or the GPU disabled)
// is slower than xterm's DOM renderer, and a slow renderer is not just ugly:
// output is acknowledged as it is rendered, so it also makes a flood drain
// slower and Ctrl-C take longer to show. Asked once per page.
let cached: boolean | undefined;

const SOFTWARE = /swiftshader|llvmpipe|softpipe|software|basic render/i;

export function gpuWebgl(): boolean {
  if (cached !== undefined) return cached;
  cached = false;
  try {
    const canvas = document.createElement('canvas');
    const gl = canvas.getContext('webgl2');
    if (!gl) return cached;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
    cached = !SOFTWARE.test(renderer);
    gl.getExtension('WEBGL_lose_context')?.loseContext();
  } catch {
    cached = false;
  }
  return cached;
}
