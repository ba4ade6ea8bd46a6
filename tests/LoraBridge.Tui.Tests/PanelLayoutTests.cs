using System.Drawing;
using Terminal.Gui.App;
using Terminal.Gui.Drivers;
using Terminal.Gui.Input;

namespace LoraBridge.Tui.Tests;

// The right column at 80×24 (accordion: the focused panel gets the room) and at large sizes (fixed shares, the card
// beside the list), checked as numbers and on the real window.
#pragma warning disable CS0618 // TextView: see MainWindow
public class PanelLayoutTests
{
    private static readonly LoraCard[] Twelve = [.. Enumerable.Range(1, 12).Select(i => new LoraCard($"style_{i:00}") { NetworkType = "lora", Rank = "4" })];

    private static MainWindow Build(int width, int height)
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => Twelve, a => a());
        w.Frame = new Rectangle(0, 0, width, height);
        w.Layout();
        return w;
    }

    /// <summary>LoRA rows the list shows at once: its height, or fewer when the list is shorter.</summary>
    private static int VisibleLoraRows(MainWindow w) => Math.Min(w.NetworkRowsShown.Count, w.LoraList.Viewport.Height);

    [Fact]
    public void ShortColumnsGiveTheFocusedPanelTheRoomTallOnesKeepShares()
    {
        // 80×24: the window's inside is 22 rows.
        Assert.Equal((16, 3, 3), PanelLayout.RightHeights(22, RightPanel.Image));
        Assert.Equal((3, 16, 3), PanelLayout.RightHeights(22, RightPanel.Networks));
        Assert.Equal((3, 3, 16), PanelLayout.RightHeights(22, RightPanel.History));
        // Tall: the same shares whatever has the focus.
        Assert.Equal((29, 17, 12), PanelLayout.RightHeights(58, RightPanel.Image));
        Assert.Equal((29, 17, 12), PanelLayout.RightHeights(58, RightPanel.History));
        // Tiny terminals never get negative heights.
        Assert.Equal((1, 1, 1), PanelLayout.RightHeights(3, RightPanel.Image));
        Assert.Equal((0, 0, 0), PanelLayout.RightHeights(0, RightPanel.Networks));
    }

    [Fact]
    public void TheCardGoesUnderANarrowListAndBesideAWideOne()
    {
        // 80×24, LoRA panel open: 23 × 14 inside; the search row, 8 list rows, a 5-row card under them.
        var (list, card) = PanelLayout.NetworkAreas(23, 14);
        Assert.Equal(new Rectangle(0, 1, 23, 8), list);
        Assert.Equal(new Rectangle(0, 9, 23, 5), card);
        // Shrunk to one row: only the search field; the list keeps its width for its row layout.
        Assert.Equal((new Rectangle(0, 1, 23, 0), Rectangle.Empty), PanelLayout.NetworkAreas(23, 1));
        // 200×60: 86 columns inside; the card takes 45 % beside the list, full height.
        (list, card) = PanelLayout.NetworkAreas(86, 15);
        Assert.Equal(new Rectangle(0, 1, 47, 14), list);
        Assert.Equal(new Rectangle(48, 1, 38, 14), card);
        // Thumbnails: as wide as the picture at the card's height, at most half the card.
        Assert.Equal(10, PanelLayout.ThumbnailColumns(23, 5, 512, 512));
        Assert.Equal(11, PanelLayout.ThumbnailColumns(23, 5, 768, 512));   // 15 wanted, half of 23 allowed
        Assert.Equal(7, PanelLayout.ThumbnailColumns(38, 14, 256, 1024));
        Assert.Equal(0, PanelLayout.ThumbnailColumns(1, 5, 512, 512));
    }

    [Fact]
    public void At80x24TheLoraListShowsAtLeastFiveRowsOnceOpenedAndEverythingStaysReachable()
    {
        using var w = Build(80, 24);
        // The form has the focus: the picture gets the room, the LoRA panel shows its title and search field.
        Assert.Equal(RightPanel.Image, w.ActiveRightPanel);
        Assert.Equal(16, w.ImageFrame.Frame.Height);
        Assert.True(w.Preview.Viewport.Height >= 10, $"picture {w.Preview.Viewport.Height} rows");
        Assert.Equal(3, w.NetworkFrame.Frame.Height);
        Assert.Equal(1, w.LoraSearch.Frame.Height);
        Assert.Equal(0, VisibleLoraRows(w));
        // Ctrl+L: the LoRA panel opens with 8 rows of the 12 LoRAs and the card under them.
        Assert.True(w.HandleKey(Key.L.WithCtrl, () => { }));
        w.Layout();
        Assert.Equal(RightPanel.Networks, w.ActiveRightPanel);
        Assert.Equal(8, VisibleLoraRows(w));
        Assert.Equal(5, w.CardView.Frame.Height);
        Assert.Equal(w.LoraList.Frame.Bottom, w.CardView.Frame.Y);
        Assert.Equal(3, w.ImageFrame.Frame.Height);
        // The picture's panel keeps its title and the caption's first row.
        Assert.Equal(1, w.ImageFrame.Viewport.Height);
        Assert.Equal(0, w.Caption.Frame.Y);
        // F3: the history opens; back in the form the picture comes back.
        Assert.True(w.HandleKey(Key.F3, () => { }));
        w.Layout();
        Assert.Equal(RightPanel.History, w.ActiveRightPanel);
        Assert.Equal(14, w.FileList.Viewport.Height);
        w.PromptEditor.SetFocus();
        w.Layout();
        Assert.Equal(16, w.ImageFrame.Frame.Height);
        // Every panel edge stays inside the window.
        Assert.Equal(w.Viewport.Height, w.ImageFrame.Frame.Height + w.NetworkFrame.Frame.Height + w.HistoryFrame.Frame.Height);
    }

    [Fact]
    public void At200x60EveryPanelIsOpenAndTheCardStandsBesideTheList()
    {
        using var w = Build(200, 60);
        Assert.Equal(12, VisibleLoraRows(w));   // all twelve, with room to spare
        Assert.True(w.LoraList.Viewport.Height >= 14, $"list {w.LoraList.Viewport.Height} rows");
        Assert.True(w.CardView.Frame.X > w.LoraList.Frame.Right - 1, "card beside the list");
        Assert.Equal(w.LoraList.Frame.Height, w.CardView.Frame.Height);
        Assert.True(w.Preview.Viewport.Height >= 20, $"picture {w.Preview.Viewport.Height} rows");
        Assert.True(w.FileList.Viewport.Height >= 8, $"history {w.FileList.Viewport.Height} rows");
        // The focus does not move panels on a tall screen.
        var before = (w.ImageFrame.Frame, w.NetworkFrame.Frame, w.HistoryFrame.Frame);
        w.HandleKey(Key.L.WithCtrl, () => { });
        w.Layout();
        Assert.Equal(before, (w.ImageFrame.Frame, w.NetworkFrame.Frame, w.HistoryFrame.Frame));
    }

    [Theory]
    [InlineData(80, 24, 0, 8)]     // shrunk until Ctrl+L, then 8 rows
    [InlineData(200, 60, 12, 12)]  // all twelve before and after
    public void TheScreenShowsTheLoraRows(int width, int height, int before, int after)
    {
        using IApplication app = Application.Create();
        app.Init(DriverRegistry.Names.ANSI);
        app.Driver!.SetScreenSize(width, height);
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => Twelve, a => a());
        app.Begin(w);
        w.PromptEditor.SetFocus();
        app.LayoutAndDraw();
        // Rows of the screen on which a LoRA name is drawn.
        int Drawn() => Enumerable.Range(0, height).Count(y =>
            string.Concat(Enumerable.Range(0, width).Select(x => app.Driver!.Contents![y, x].Grapheme)).Contains(" style_", StringComparison.Ordinal));
        Assert.Equal(before, Drawn());
        Assert.True(w.HandleKey(Key.L.WithCtrl, () => { }));
        app.LayoutAndDraw();
        Assert.Equal(after, Drawn());
    }
}
