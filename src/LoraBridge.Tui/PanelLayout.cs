using System.Drawing;

namespace LoraBridge.Tui;

/// <summary>The panels of the window's right column, top to bottom.</summary>
public enum RightPanel
{
    /// <summary>The picture and its infotext.</summary>
    Image,
    /// <summary>The LoRA (or embeddings) list with the selected card.</summary>
    Networks,
    /// <summary>The history of generated images.</summary>
    History,
}

/// <summary>
/// Sizes of the window's right column, kept out of the views so they can be checked without a terminal. A tall
/// terminal shows the three panels side by side in fixed shares; a short one (80×24) cannot give each a useful height,
/// so it works as an accordion: the panel holding the focus gets the room and the others shrink to their title and
/// one row (still visible, and a click or a key — Ctrl+L, F3 — opens them).
/// </summary>
public static class PanelLayout
{
    /// <summary>Rows of the column from which the three panels are shown in fixed shares.</summary>
    public const int TallRows = 36;

    /// <summary>Height of a shrunk panel: top border with its title, one row, bottom border.</summary>
    public const int CollapsedRows = 3;

    /// <summary>Heights of the image, network and history panels in a column of <paramref name="rows"/> rows.</summary>
    /// <param name="rows">Rows of the column.</param>
    /// <param name="active">The panel that holds the focus (the image panel when the focus is in the form).</param>
    public static (int Image, int Networks, int History) RightHeights(int rows, RightPanel active)
    {
        rows = Math.Max(0, rows);
        if (rows >= TallRows)
        {
            int image = rows * 50 / 100, networks = rows * 30 / 100;
            return (image, networks, rows - image - networks);
        }
        int small = Math.Min(CollapsedRows, rows / 3);
        int big = rows - 2 * small;
        return active switch
        {
            RightPanel.Networks => (small, big, small),
            RightPanel.History => (small, small, big),
            _ => (big, small, small),
        };
    }

    /// <summary>Inner width of the network panel from which the card stands beside the list instead of under it.</summary>
    public const int CardBesideWidth = 56;

    /// <summary>True when the card goes beside the list (a wide panel), false when it goes under it.</summary>
    public static bool CardBeside(int innerWidth) => innerWidth >= CardBesideWidth;

    /// <summary>Columns of a card beside the list (the list keeps the larger part).</summary>
    public static int CardColumns(int innerWidth) => innerWidth * 45 / 100;

    /// <summary>
    /// Rows of a card under the list, from the rows below the search field: none below 8 (the list comes first),
    /// else two fifths, at most 8.
    /// </summary>
    public static int CardRows(int rowsUnderSearch) => rowsUnderSearch < 8 ? 0 : Math.Min(8, rowsUnderSearch * 2 / 5);

    /// <summary>
    /// Where the list and the card go inside the network panel (<paramref name="innerWidth"/> × <paramref name="innerHeight"/>
    /// cells, the search field on its first row): the card beside the list in a wide panel, under it in a narrow one,
    /// left out when the panel is too short (the list comes first).
    /// </summary>
    public static (Rectangle List, Rectangle Card) NetworkAreas(int innerWidth, int innerHeight)
    {
        int rows = innerHeight - 1;
        if (innerWidth <= 0) return (Rectangle.Empty, Rectangle.Empty);
        // A shrunk panel shows only the search field; the list keeps its width (its rows stay laid out for it).
        if (rows <= 0) return (new Rectangle(0, 1, innerWidth, 0), Rectangle.Empty);
        if (CardBeside(innerWidth))
        {
            int cardWidth = CardColumns(innerWidth);
            return (new Rectangle(0, 1, innerWidth - cardWidth - 1, rows), new Rectangle(innerWidth - cardWidth, 1, cardWidth, rows));
        }
        int cardRows = CardRows(rows);
        return (new Rectangle(0, 1, innerWidth, rows - cardRows), new Rectangle(0, 1 + rows - cardRows, innerWidth, cardRows));
    }

    /// <summary>
    /// Columns of a thumbnail of <paramref name="imageWidth"/> × <paramref name="imageHeight"/> pixels in a card of
    /// <paramref name="cardColumns"/> × <paramref name="cardRows"/> cells: as wide as the picture is at the card's
    /// height (two pixels per cell down), at most half the card (the text keeps the rest); 0 without room.
    /// </summary>
    public static int ThumbnailColumns(int cardColumns, int cardRows, int imageWidth, int imageHeight)
    {
        if (cardColumns < 2 || cardRows < 1 || imageWidth < 1 || imageHeight < 1) return 0;
        var atHeight = (int)Math.Ceiling(2.0 * cardRows * imageWidth / imageHeight);
        return Math.Clamp(atHeight, 1, cardColumns / 2);
    }
}
