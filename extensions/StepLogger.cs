using System.Text.Json;

// Writes one JSON line per sampler step, and one per image written, to a log file.
// Setting: LoraBridge:Extensions:StepLogger:Path (env LORABRIDGE_EXTENSIONS__STEPLOGGER__PATH); a relative path is
// under the extension data folder; unset logs nothing.
public sealed class StepLogger : ILoraBridgeExtension
{
    private string? _path;

    public string Name => "StepLogger";

    public string Description => "Writes a JSON line per step and per image to StepLogger:Path";

    public void Initialize(IExtensionHost host)
    {
        var path = host.GetSetting("StepLogger:Path");
        if (string.IsNullOrWhiteSpace(path)) return;
        _path = Path.GetFullPath(path, host.DataDir);
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
    }

    public async ValueTask AfterStepAsync(GenerationProgress p, CancellationToken ct)
    {
        if (_path is null) return;
        await AppendAsync(new
        {
            time = DateTimeOffset.UtcNow, batch = p.Batch, batchCount = p.BatchCount, step = p.Step, totalSteps = p.TotalSteps,
            stepsPerSecond = Math.Round(p.StepsPerSecond, 3),
        }, ct);
    }

    public async ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct)
    {
        if (_path is null) return;
        await AppendAsync(new { time = DateTimeOffset.UtcNow, image = image.Path, seed = image.Seed }, ct);
    }

    private Task AppendAsync(object line, CancellationToken ct) =>
        File.AppendAllTextAsync(_path!, JsonSerializer.Serialize(line) + "\n", ct);
}
