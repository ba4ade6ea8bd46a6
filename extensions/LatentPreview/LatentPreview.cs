// Writes a preview PNG of every model call's denoised prediction while a job samples, as A1111's live preview shows
// it, done in python/latent_preview.py:
// - "Approx cheap": A1111's linear latent → RGB approximation, one pixel per latent pixel;
// - "TAESD": the tiny TAESD decoder, 8 pixels per latent pixel, from a VAE-approx folder of the host's models folders
//   (<webui>/models/VAE-approx, then <data dir>/models/VAE-approx): taesd_decoder.safetensors|.pth for SD1 models,
//   taesdxl_decoder.safetensors|.pth for SDXL ones, as A1111 names them.
// Settings (LoraBridge:Extensions:..., env LORABRIDGE_EXTENSIONS__LATENTPREVIEW__...):
// - LatentPreview:Dir (relative to the extension data folder): each job writes <Dir>/job-NNNN/step-SSS.png (SSS counts
//   the job's model calls, hires pass included). Unset does nothing.
// - LatentPreview:Decoder: approx | taesd | auto (default): auto uses TAESD when the loaded model's file exists, the
//   cheap approximation otherwise; taesd without the file fails the job saying where it looked.
public sealed class LatentPreview : ILoraBridgeExtension
{
    private static readonly string[] Modes = ["approx", "taesd", "auto"];

    private IPythonModule _python = null!;
    private string? _dir;
    private string? _jobDir;
    private int _calls;
    private string _mode = "auto";
    private List<string> _vaeApproxDirs = [];

    public string Name => "LatentPreview";

    public string Description => "Writes a preview PNG per step (cheap approximation or TAESD) to LatentPreview:Dir";

    public void Initialize(IExtensionHost host)
    {
        _python = host.ImportPython("latent_preview");
        var dir = host.GetSetting("LatentPreview:Dir");
        if (!string.IsNullOrWhiteSpace(dir)) _dir = Path.GetFullPath(dir, host.DataDir);
        var mode = host.GetSetting("LatentPreview:Decoder");
        if (!string.IsNullOrWhiteSpace(mode))
        {
            _mode = mode.Trim().ToLowerInvariant();
            // Refused at load time, so a typo is reported by `extensions list` rather than at the first step.
            if (!Modes.Contains(_mode))
                throw new ArgumentException($"LatentPreview:Decoder must be approx, taesd or auto, got \"{mode}\"");
        }
        _vaeApproxDirs = host.ModelsDirs.Select(d => Path.Combine(d, "VAE-approx")).ToList();
    }

    public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct)
    {
        if (_dir is not null)
        {
            Directory.CreateDirectory(_dir);
            int n = Directory.GetDirectories(_dir, "job-*").Length;
            while (Directory.Exists(_jobDir = Path.Combine(_dir, $"job-{n:D4}"))) n++;
            Directory.CreateDirectory(_jobDir);
            _calls = 0;
        }
        return ValueTask.FromResult(request);
    }

    public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
    {
        if (_jobDir is null) return;
        _calls++;
        await _python.CallAsync("save_preview", step.Denoised, Path.Combine(_jobDir, $"step-{_calls:D3}.png"), _mode, _vaeApproxDirs);
    }
}
