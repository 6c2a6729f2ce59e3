namespace hookrelay {}
