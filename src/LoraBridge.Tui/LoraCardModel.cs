using LoraBridge.Models;

namespace LoraBridge.Tui;

/// <summary>
/// The card of the selected LoRA (or embedding) beside the network list: its facts as text and its preview image as a
/// thumbnail in a <see cref="PreviewModel"/>, so the card's picture is drawn by the same <see cref="PreviewView"/> as
/// the image panel (half blocks everywhere, Kitty or Sixel where the terminal has them). Previews are decoded by a
/// <see cref="ThumbnailCache"/> off the UI thread; a result that arrives after the selection moved on is dropped.
/// </summary>
public sealed class LoraCardModel
{
    private readonly ThumbnailCache _thumbnails;
    private readonly Action<Action> _post;
    private int _selection;

    /// <summary>Creates the model.</summary>
    /// <param name="thumbnails">Decodes and keeps preview thumbnails.</param>
    /// <param name="post">Runs an action on the UI thread (a decoded thumbnail is shown there).</param>
    public LoraCardModel(ThumbnailCache thumbnails, Action<Action> post)
    {
        _thumbnails = thumbnails;
        _post = post;
    }

    /// <summary>The preview thumbnail (no picture while loading, without a preview, or when it cannot be read).</summary>
    public PreviewModel Thumbnail { get; } = new();

    /// <summary>The card's text: the LoRA's facts, then a line about its preview.</summary>
    public string Text { get; private set; } = NothingSelected;

    /// <summary>The line about the preview: loading, none, or why it cannot be shown; empty when it is shown.</summary>
    public string PreviewStatus { get; private set; } = "";

    /// <summary>The LoRA shown, or null.</summary>
    public LoraCard? Card { get; private set; }

    /// <summary>Completes when the current selection's thumbnail is decoded and handed to the UI thread (tests wait on it).</summary>
    public Task Loading { get; private set; } = Task.CompletedTask;

    /// <summary>Raised after the text or the thumbnail changed.</summary>
    public event Action? Changed;

    /// <summary>Text of the card while no row is selected.</summary>
    public const string NothingSelected = "no LoRA selected";

    /// <summary>The preview line of a LoRA without a preview image (says where A1111 looks for one).</summary>
    public static string NoPreview(LoraCard card) => $"no preview image (A1111 looks for {card.Name}.preview.png or {card.Name}.png beside the file)";

    /// <summary>The preview line while the thumbnail is decoded.</summary>
    public const string LoadingPreview = "preview: loading…";

    /// <summary>Shows <paramref name="card"/> (null: nothing selected); its preview is decoded in the background.</summary>
    /// <param name="card">The selected LoRA.</param>
    /// <param name="checkpoint">Family of the checkpoint (a LoRA of another family is marked).</param>
    public void Show(LoraCard? card, BaseFamily checkpoint)
    {
        var selection = ++_selection;
        Card = card;
        if (card is null) { Set(NothingSelected, "", null, null); Loading = Task.CompletedTask; return; }
        var facts = card.CardText(checkpoint);
        if (card.PreviewPath is not { } path) { Set(facts, NoPreview(card), null, null); Loading = Task.CompletedTask; return; }
        var load = _thumbnails.LoadAsync(path);
        // A thumbnail decoded before is shown at once (no "loading" flicker while moving through the list).
        if (load.IsCompletedSuccessfully) { Apply(facts, path, load.Result); Loading = Task.CompletedTask; return; }
        Set(facts, LoadingPreview, null, path);
        Loading = load.ContinueWith(t => _post(() => { if (selection == _selection) Apply(facts, path, t.Result); }),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Shows a card without a picture (an embedding's details, or why the list is empty).</summary>
    public void ShowText(string text)
    {
        ++_selection;
        Card = null;
        Set(text, "", null, null);
        Loading = Task.CompletedTask;
    }

    private void Apply(string facts, string path, Thumbnail thumbnail) =>
        Set(facts, thumbnail.Error ?? "", thumbnail.Image, path);

    private void Set(string facts, string previewStatus, RgbImage? image, string? path)
    {
        PreviewStatus = previewStatus;
        Text = previewStatus.Length > 0 ? facts + "\n" + previewStatus : facts;
        Thumbnail.Show(image, path, previewStatus);
        Changed?.Invoke();
    }
}
