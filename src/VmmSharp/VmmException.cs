namespace VmmSharp;

/// <summary>Base of the errors VmmSharp raises: each says what failed and with which value.</summary>
public class VmmException : Exception
{
    /// <summary>Creates an error with a message.</summary>
    public VmmException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an error with a message and the error that caused it.</summary>
    public VmmException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an error with no message; prefer the constructors that say what failed.</summary>
    public VmmException()
    {
    }
}
