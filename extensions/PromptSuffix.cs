// Appends a style suffix to every prompt before it is planned, as A1111's "styles" do.
// Setting: LoraBridge:Extensions:PromptSuffix:Suffix (env LORABRIDGE_EXTENSIONS__PROMPTSUFFIX__SUFFIX);
// unset or blank leaves prompts alone.
public sealed class PromptSuffix : ILoraBridgeExtension
{
    private string _suffix = "";

    public string Name => "PromptSuffix";

    public string Description => "Appends the configured style suffix (PromptSuffix:Suffix) to every prompt";

    public void Initialize(IExtensionHost host) => _suffix = host.GetSetting("PromptSuffix:Suffix")?.Trim() ?? "";

    public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct)
    {
        if (_suffix.Length == 0) return ValueTask.FromResult(request);
        // The prompt may end in a comma already; A1111 joins style text with ", ".
        var prompt = request.Prompt.TrimEnd().TrimEnd(',');
        return ValueTask.FromResult(request with { Prompt = prompt.Length == 0 ? _suffix : $"{prompt}, {_suffix}" });
    }
}
