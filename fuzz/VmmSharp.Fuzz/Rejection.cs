namespace VmmSharp.Fuzz;

/// <summary>
/// Where a target notes that the code under test refused an input with a documented error: silent under afl-fuzz,
/// printed during a replay, so that one can tell a seed that reaches the loader from one refused at the door.
/// </summary>
internal static class Rejection
{
    public static bool Verbose { get; set; }

    /// <summary>How many inputs were refused since the last <see cref="Reset"/>.</summary>
    public static int Count { get; private set; }

    public static void Reset() => Count = 0;

    public static void Note(Exception e)
    {
        Count++;
        if (Verbose)
        {
            Console.Error.WriteLine($"  refused ({e.GetType().Name}): {e.Message}");
        }
    }
}
