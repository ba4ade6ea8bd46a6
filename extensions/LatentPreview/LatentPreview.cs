// Writes a preview PNG of every model call's denoised prediction while a job samples, as A1111's live preview shows
// it: "Approx cheap" (A1111's linear latent → RGB approximation, one pixel per latent pixel), done in
// python/latent_preview.py. Setting: LoraBridge:Extensions:LatentPreview:Dir (env
// LORABRIDGE_EXTENSIONS__LATENTPREVIEW__DIR; relative to the extension data folder); each job writes
// <Dir>/job-NNNN/step-SSS.png (SSS counts the job's model calls, hires pass included). Unset does nothing.
public sealed class LatentPreview : ILoraBridgeExtension
{
    private IPythonModule _python = null!;
    private string? _dir;
    private string? _jobDir;
    private int _calls;

    public string Name => "LatentPreview";

    public string Description => "Writes a preview PNG per step (A1111's cheap latent approximation) to LatentPreview:Dir";

    public void Initialize(IExtensionHost host)
    {
        _python = host.ImportPython("latent_preview");
        var dir = host.GetSetting("LatentPreview:Dir");
        if (!string.IsNullOrWhiteSpace(dir)) _dir = Path.GetFullPath(dir, host.DataDir);
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
        await _python.CallAsync("save_preview", step.Denoised, Path.Combine(_jobDir, $"step-{_calls:D3}.png"));
    }
}
